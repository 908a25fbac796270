"""The checkpoint-converter command lines, tools/model_converters/*.py: run
in process through their main(), and as a subprocess as users run them.

What they convert is checked by outputs in tests/test_converters (the
library, mmpvg.converters); here, that the command lines read, print, save
and refuse as they should.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

import mmpvg  # noqa: F401
from mmpvg.converters import convert_timm_to_mpvg, load_checkpoint
from mmpvg.testing import REPO_ROOT, TOOL_TIMEOUT, load_tool
from mmpvg.testing.references import (CLASSES, EMBED, TOL, LaPEReference,
                                      classifier, digest, randomise,
                                      timm_kwargs, timm_vit)
from mmpvg.testing.references import images  # noqa: F401  (a fixture)

CONVERTERS = osp.join(REPO_ROOT, 'tools', 'model_converters')


def load_converter(name):
    return load_tool(f'tools/model_converters/{name}.py')


# ---------------------------------------------------------------------- #
# the command lines
# ---------------------------------------------------------------------- #
def test_cli_in_process(tmp_path, capsys, images):  # noqa: F811
    deit2mpvg = load_converter('deit2mpvg')
    lape2mpvg = load_converter('lape2mpvg')
    mpvg2backbone = load_converter('mpvg2backbone')

    src = timm_vit(seed=8)
    timm_path = str(tmp_path / 'timm.pth')
    torch.save({'model': src.state_dict(), 'epoch': 1}, timm_path)
    mpvg_path = str(tmp_path / 'new' / 'dir' / 'mpvg.pth')
    deit2mpvg.main([timm_path, mpvg_path])
    out = capsys.readouterr().out
    assert 'not converted (other checkpoint entries): epoch' in out
    assert ("backbone=dict(type='MPVGViT', arch=dict(embed_dims=32, "
            'num_layers=3, num_heads=<not stored in weights>, '
            "feedforward_channels=64, qkv_bias=True), pe_mode='cls', "
            'img_size=32, patch_size=8)') in out
    saved = load_checkpoint(mpvg_path)
    assert saved['meta']['converter'] == 'deit2mpvg'
    model = classifier('cls')
    model.load_state_dict(saved['state_dict'], strict=True)

    back_path = str(tmp_path / 'back.pth')
    deit2mpvg.main(['--reverse', mpvg_path, back_path])
    back = load_checkpoint(back_path)
    assert all(torch.equal(back[k], v) for k, v in src.state_dict().items())
    assert back.keys() == src.state_dict().keys()

    lape = randomise(LaPEReference(**timm_kwargs()), seed=9)
    lape_path = str(tmp_path / 'lape.pth')
    torch.save({'model': lape.state_dict()}, lape_path)
    lape_out = str(tmp_path / 'lape_mpvg.pth')
    lape2mpvg.main([lape_path, lape_out])
    out = capsys.readouterr().out
    assert "pe_mode='lape'" in out
    # What the weights cannot show is printed under the config.
    assert ('          #   pe_at_input=False (pos_0 not added to the tokens '
            'before block 0)') in out
    assert '          #   hierarchical_pe=True' in out
    model = classifier('lape')
    model.load_state_dict(load_checkpoint(lape_out)['state_dict'],
                          strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(images, mode='tensor'),
                                   lape(images), **TOL)

    backbone_path = str(tmp_path / 'backbone.pth')
    mpvg2backbone.main([lape_out, backbone_path, '--img-size', '48'])
    out = capsys.readouterr().out
    assert '2 unused key(s):' in out
    assert f'    head.fc.weight ({CLASSES}, {EMBED})' in out
    assert f'    head.fc.bias ({CLASSES},)' in out
    assert f'resized from (1, 17, {EMBED}) to (1, 37, {EMBED})' in out
    state = load_checkpoint(backbone_path)['state_dict']
    assert state['backbone.pe.pos_embed'].shape == (1, 37, EMBED)

    # Errors: exit status 1 and the converter's message, nothing written.
    with pytest.raises(SystemExit) as exc:
        deit2mpvg.main([lape_path, str(tmp_path / 'never.pth')])
    assert exc.value.code == 1
    assert 'deit2mpvg.py: error: Cannot convert: this is a LaPE checkpoint' \
        in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'never.pth')
    with pytest.raises(SystemExit) as exc:
        mpvg2backbone.main([lape_out, str(tmp_path / 'never.pth'),
                            '--src-prefix', 'model.'])
    assert exc.value.code == 1
    assert ("error: No key of the checkpoint starts with 'model.'"
            in capsys.readouterr().err)
    with pytest.raises(SystemExit) as exc:
        deit2mpvg.main([timm_path, timm_path, '--force'])
    assert 'is the source checkpoint' in capsys.readouterr().err


def test_cli_refuses_to_overwrite(tmp_path, capsys):
    mpvg2backbone = load_converter('mpvg2backbone')
    cls_path = str(tmp_path / 'cls.pth')
    torch.save({'state_dict': classifier('cls', seed=11).state_dict()},
               cls_path)
    existing = str(tmp_path / 'existing.pth')
    with open(existing, 'wb') as f:
        f.write(b'precious user data')
    before = digest(existing)
    with pytest.raises(SystemExit) as exc:
        mpvg2backbone.main([cls_path, existing, '--img-size', '64'])
    assert exc.value.code == 1
    assert (f"mpvg2backbone.py: error: Output file {existing!r} already "
            'exists; it was left unchanged. Choose another path, or pass '
            '--force to replace it.\n') == capsys.readouterr().err
    assert digest(existing) == before

    mpvg2backbone.main([cls_path, existing, '--img-size', '64', '--force'])
    assert 'Saved to' in capsys.readouterr().out
    state = load_checkpoint(existing)['state_dict']
    assert state['backbone.pe.pos_embed'].shape == (1, 1 + 64, EMBED)


def test_cli_subprocess(tmp_path):
    """The command line as users run it (pays one import of mmpvg)."""
    timm_path = str(tmp_path / 'timm.pth')
    torch.save({'model': timm_vit(seed=10).state_dict()}, timm_path)
    out_path = str(tmp_path / 'out' / 'mpvg.pth')
    proc = subprocess.run(
        [sys.executable, osp.join(CONVERTERS, 'deit2mpvg.py'), timm_path,
         out_path],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1'),
        capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Converted {timm_path} (timm/DeiT ViT -> MPVGViT pe_mode='cls')" \
        in proc.stdout
    assert 'every key of the source state dict used' in proc.stdout
    assert f'Saved to {out_path}' in proc.stdout
    state = load_checkpoint(out_path)['state_dict']
    expected = convert_timm_to_mpvg(load_checkpoint(timm_path)['model'])
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], v) for k, v in expected.items())


# ---------------------------------------------------------------------- #
# mmpretrain / mmseg ViT -> MPVGViT, and the other converters naming it
# ---------------------------------------------------------------------- #
def test_mmpretrain2mpvg_cli(tmp_path, capsys, images):  # noqa: F811
    from mmpretrain.registry import MODELS

    from mmpvg.converters.mmpretrain_keys import avg_norm_neck_cfg
    from mmpvg.testing.references import ARCH, IMG, PATCH
    mmpretrain2mpvg = load_converter('mmpretrain2mpvg')
    deit2mpvg = load_converter('deit2mpvg')
    mpvg2backbone = load_converter('mpvg2backbone')

    src = randomise(MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', arch=ARCH, img_size=IMG,
                      patch_size=PATCH, out_type='avg_featmap'),
        head=dict(type='VisionTransformerClsHead', num_classes=CLASSES,
                  in_channels=EMBED))), seed=12)
    src_path = str(tmp_path / 'mmpretrain.pth')
    torch.save({'state_dict': src.state_dict(), 'meta': {}}, src_path)
    out_path = str(tmp_path / 'mpvg.pth')
    mmpretrain2mpvg.main([src_path, out_path])
    out = capsys.readouterr().out
    assert (f"Converted {src_path} (mmpretrain VisionTransformer -> MPVGViT "
            "pe_mode='cls')") in out
    assert ("backbone.ln2 (out_type='avg_featmap': LayerNorm after pooling) "
            '-> neck.norm of a LinearNeck') in out
    assert ("pe_mode='cls', img_size=32, patch_size=8, "
            "out_type='avg_featmap')") in out
    assert ("  neck=dict(type='LinearNeck', in_channels=32, out_channels=32, "
            "norm_cfg=dict(type='LN', eps=1e-06), act_cfg=None)") in out
    assert "  head=dict(type='LinearClsHead', num_classes=10" in out
    saved = load_checkpoint(out_path)
    assert saved['meta']['converter'] == 'mmpretrain2mpvg'
    assert saved['meta']['source_format'] == 'mmpretrain'
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='MPVGViT', arch=ARCH, img_size=IMG,
                      patch_size=PATCH, pe_mode='cls',
                      out_type='avg_featmap'),
        neck=avg_norm_neck_cfg(EMBED),
        head=dict(type='LinearClsHead', num_classes=CLASSES,
                  in_channels=EMBED))).eval()
    model.load_state_dict(saved['state_dict'], strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(images, mode='tensor'),
                                   src(images, mode='tensor'), **TOL)

    # An existing output is kept without --force.
    with pytest.raises(SystemExit) as exc:
        mmpretrain2mpvg.main([src_path, out_path, '--drop-avg-norm'])
    assert exc.value.code == 1
    assert 'already exists; it was left unchanged' in capsys.readouterr().err
    mmpretrain2mpvg.main([src_path, out_path, '--drop-avg-norm', '--force'])
    assert 'dropped (--drop-avg-norm)' in capsys.readouterr().out
    assert not any(k.startswith('neck.')
                   for k in load_checkpoint(out_path)['state_dict'])

    # The other converters say what the file is and name this one.
    for tool, name in ((deit2mpvg, 'deit2mpvg'),
                       (mpvg2backbone, 'mpvg2backbone')):
        with pytest.raises(SystemExit) as exc:
            tool.main([src_path, str(tmp_path / 'never.pth')])
        assert exc.value.code == 1
        err = capsys.readouterr().err
        assert err.startswith(f'{name}.py: error: ')
        assert ('It is an mmpretrain VisionTransformer checkpoint; convert '
                'it with tools/model_converters/mmpretrain2mpvg.py.') in err
        assert 'has no' not in err
    assert not osp.exists(tmp_path / 'never.pth')

    # and this one names the timm converter for a timm file
    timm_path = str(tmp_path / 'timm.pth')
    torch.save(timm_vit(seed=13).state_dict(), timm_path)
    with pytest.raises(SystemExit):
        mmpretrain2mpvg.main([timm_path, str(tmp_path / 'never.pth')])
    assert ('convert it with tools/model_converters/deit2mpvg.py'
            in capsys.readouterr().err)
