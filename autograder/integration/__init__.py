"""The nbgrader integration: :class:`~.execute.JudgedExecute`, the ``Execute`` replacement
whose verdicts come from the judge.

:mod:`.execute` holds the class nbgrader loads (its settings, and one notebook's grading from
start to end); the roles it is made of are mixins, one module each: :mod:`.preparation`
(the scratch folder, the judge's inputs, the sandbox, the seed), :mod:`.hooks` (nbclient's
hooks: the kernel manager, outputs, each cell's start and end), :mod:`.findings` (integrity
findings from the static scan and the audit channel) and :mod:`.verdicts` (statuses,
provenance, the report written into the notebook). :mod:`.recordings` moves what the kernel
recorded out of its reach; :mod:`.cells` tells test cells, student cells and skipped
demonstrations apart.
"""
