"""GPU: forward and backward of every pe_mode under AMP (fp16 with a loss
scale, bf16), finite and close to fp32, for MPVGViT, MPVGSwin and the
ViT-Adapter (its deformable attention in mmcv's CUDA kernel). Skipped
without CUDA (run by tools/gpu_check.sh)."""
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA GPU (tools/gpu_check.sh)')

VIT = dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128)
DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}


def _check_amp(backbone, x, amp):
    """fp32 reference, then the same weights under autocast: the pooled
    output agrees, the loss and every gradient are finite."""
    backbone = backbone.cuda().train()
    torch.manual_seed(0)
    with torch.no_grad():
        ref = backbone(x)[-1].float()
    scaler = torch.amp.GradScaler('cuda', enabled=amp == 'fp16')
    with torch.autocast('cuda', dtype=DTYPES[amp]):
        out = backbone(x)[-1]
        assert out.dtype == DTYPES[amp] or out.dtype == torch.float32
        loss = out.float().square().mean()
    scaler.scale(loss).backward()
    assert torch.isfinite(loss)
    cos = torch.nn.functional.cosine_similarity(
        out.float().flatten(1), ref.flatten(1)).min()
    assert cos > 0.99, f'{amp} output drifts from fp32: cos {cos:.4f}'
    for name, p in backbone.named_parameters():
        if p.requires_grad and p.grad is not None:
            assert torch.isfinite(p.grad).all(), f'{amp}: {name} grad'
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in backbone.parameters())


@pytest.mark.parametrize('amp', DTYPES)
@pytest.mark.parametrize('mode', ['cls', 'gap', 'lape', 'pvg', 'mpvg'])
def test_vit_every_mode(mode, amp):
    from mmpvg.models import MPVGViT
    torch.manual_seed(0)
    model = MPVGViT(arch=VIT, img_size=64, patch_size=8, pe_mode=mode)
    _check_amp(model, torch.randn(4, 3, 64, 64, device='cuda'), amp)


@pytest.mark.parametrize('amp', DTYPES)
@pytest.mark.parametrize('mode', ['gap', 'lape', 'pvg', 'mpvg'])
def test_swin_every_mode(mode, amp):
    from mmpvg.models import MPVGSwin
    torch.manual_seed(0)
    model = MPVGSwin(arch=dict(embed_dims=32, depths=[2, 2], num_heads=[2, 4]),
                     img_size=64, pe_mode=mode, out_indices=(1, ),
                     drop_path_rate=0.)
    _check_amp(model, torch.randn(2, 3, 64, 64, device='cuda'), amp)


@pytest.mark.parametrize('amp', DTYPES)
def test_vit_adapter_deformable_attention(amp):
    pytest.importorskip('mmdet')
    import mmpvg  # noqa: F401
    from mmengine.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='MPVGViTAdapter', arch=VIT, img_size=64,
        patch_size=8, pe_mode='mpvg',
        interaction_indexes=[[0, 0], [1, 1], [2, 2], [3, 3]],
        window_size=4, global_attn_indexes=[1, 3], deform_num_heads=4))
    _check_amp(model, torch.randn(2, 3, 64, 64, device='cuda'), amp)
