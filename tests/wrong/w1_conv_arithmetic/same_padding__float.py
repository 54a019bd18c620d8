"""Returns a float (true division)."""


def same_padding(kernel_size, dilation=1):
    span = dilation * (kernel_size - 1) + 1
    if span % 2 == 0:
        raise ValueError("an even span cannot be padded symmetrically")
    return (span - 1) / 2
