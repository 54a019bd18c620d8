"""A solution cell that never finishes: a top-level loop before the (right) definitions.

The cell is interrupted after ``code_cell_timeout`` (not the test cells' longer limit), and
the problems it should have defined end "timeout", naming the cell."""
while True:
    pass

__REFERENCE__
