"""Updates the running statistics from the batch in eval mode as well."""
import torch


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    dims = [0] + list(range(2, x.dim()))
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    n = x.numel() // x.shape[1]
    if training and n < 2:
        raise ValueError("need more than one value per channel")
    mean = x.mean(dim=dims)
    var = x.var(dim=dims, unbiased=False)
    if not training:
        mean, var = running_mean.clone(), running_var.clone()
    if n > 1:
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * x.mean(dim=dims))
            running_var.mul_(1 - momentum).add_(momentum * x.var(dim=dims, unbiased=True))
    out = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out
