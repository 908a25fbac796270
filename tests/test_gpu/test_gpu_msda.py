"""GPU: mmcv's MultiScaleDeformableAttention CUDA kernel equals the PyTorch
path (the one the CPU runs), forward and backward. Skipped without CUDA or
without mmcv's compiled CUDA ops (run by tools/gpu_check.sh)."""
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA GPU (tools/gpu_check.sh)')


def _cuda_ops():
    try:
        from mmcv.ops.multi_scale_deform_attn import (
            MultiScaleDeformableAttnFunction,
            multi_scale_deformable_attn_pytorch)
        from mmcv.utils import ext_loader
        ext_loader.load_ext('_ext', ['ms_deform_attn_forward'])
    except (ImportError, AttributeError) as e:
        pytest.skip(f'mmcv has no compiled ops: {e}')
    return (MultiScaleDeformableAttnFunction,
            multi_scale_deformable_attn_pytorch)


def _inputs(dtype, device='cuda'):
    torch.manual_seed(0)
    shapes = torch.tensor([[12, 16], [6, 8], [3, 4]], device=device)
    start = torch.cat((shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]))
    bs, heads, dims, queries, points = 2, 4, 8, 30, 4
    keys = int(shapes.prod(1).sum())
    value = torch.randn(bs, keys, heads, dims, device=device, dtype=dtype)
    loc = torch.rand(bs, queries, heads, len(shapes), points, 2,
                     device=device, dtype=dtype) * 1.2 - 0.1  # some outside
    weights = torch.rand(bs, queries, heads, len(shapes), points,
                         device=device, dtype=dtype)
    weights = weights / weights.sum((-1, -2), keepdim=True)
    return value, shapes, start, loc, weights


@pytest.mark.parametrize('dtype, tol', [(torch.float32, 1e-5),
                                        (torch.float64, 1e-10)])
def test_cuda_kernel_equals_pytorch_path(dtype, tol):
    cuda_fn, torch_fn = _cuda_ops()
    value, shapes, start, loc, weights = _inputs(dtype)
    grads = []
    for use_cuda in (True, False):
        v, l, w = (t.clone().requires_grad_() for t in (value, loc, weights))
        out = (cuda_fn.apply(v, shapes, start, l, w, 64) if use_cuda
               else torch_fn(v, shapes, l, w))
        (out * torch.linspace(-1, 1, out.numel(), device='cuda',
                              dtype=dtype).view_as(out)).sum().backward()
        grads.append((out.detach(), v.grad, l.grad, w.grad))
    for name, a, b in zip(('output', 'd value', 'd location', 'd weight'),
                          *grads):
        torch.testing.assert_close(a, b, rtol=tol * 10, atol=tol,
                                   msg=lambda m: f'{name}: {m}')


def test_module_on_cuda_equals_module_on_cpu():
    """The whole module (projections + kernel) on the GPU against the same
    weights on the CPU, where mmcv takes the PyTorch path."""
    _cuda_ops()
    from mmcv.ops import MultiScaleDeformableAttention
    torch.manual_seed(0)
    attn = MultiScaleDeformableAttention(embed_dims=32, num_heads=4,
                                         num_levels=3, num_points=4,
                                         batch_first=True).double()
    value, shapes, start, _, _ = _inputs(torch.float64, 'cpu')
    value = value.flatten(2)  # (bs, keys, 32)
    query = torch.randn(2, 30, 32, dtype=torch.float64)
    ref = torch.rand(2, 30, 3, 2, dtype=torch.float64)
    outs = []
    for device in ('cpu', 'cuda'):
        m = attn.to(device)
        outs.append(m(query.to(device), value=value.to(device),
                      reference_points=ref.to(device),
                      spatial_shapes=shapes.to(device),
                      level_start_index=start.to(device)).cpu())
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-9, atol=1e-10)
