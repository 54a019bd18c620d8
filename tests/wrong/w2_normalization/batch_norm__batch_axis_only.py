"""Takes the statistics over the batch axis only, so (N, C, *) inputs get one statistic per position."""
EXPECT = 'statistics over the batch axis only'
import torch


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    if training:
        n = x.shape[0]
        if n < 2:
            raise ValueError("need more than one sample")
        mean = x.mean(dim=0, keepdim=True)
        var = x.var(dim=0, unbiased=False, keepdim=True)
        with torch.no_grad():
            channel_mean = mean.reshape(x.shape[1], -1).mean(dim=1)
            channel_var = var.reshape(x.shape[1], -1).mean(dim=1)
            running_mean.mul_(1 - momentum).add_(momentum * channel_mean)
            running_var.mul_(1 - momentum).add_(momentum * channel_var * n / (n - 1))
    else:
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    out = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out
