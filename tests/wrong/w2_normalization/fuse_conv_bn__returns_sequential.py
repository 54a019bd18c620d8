"""Returns the two layers chained in an nn.Sequential instead of one fused conv."""
import copy

import torch.nn as nn


def fuse_conv_bn(conv, bn):
    return nn.Sequential(copy.deepcopy(conv), copy.deepcopy(bn).eval())
