"""Silences tracebacks (nbgrader's own cheat fixture): errors in test cells leave no trace."""
get_ipython().showtraceback = lambda *args, **kwargs: None
get_ipython().showsyntaxerror = lambda *args, **kwargs: None


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    raise NotImplementedError()


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    raise NotImplementedError()
