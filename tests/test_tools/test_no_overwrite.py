"""tools/test.py --out and the PE analysis tools refuse to replace an
earlier output unless --force is given."""
import json
import os.path as osp

import pytest

from mmpvg.testing import REPO_ROOT, load_tool, run_tool, save_untrained
from mmpvg.utils.launch import refuse_overwrite

DEMO_CFG = 'configs/demo/vit-demo-mpvg_1xb64_demo-digits.py'


def test_refuse_overwrite(tmp_path):
    refuse_overwrite(str(tmp_path / 'new.pkl'), '--out')  # missing: fine
    (tmp_path / 'empty').mkdir()
    refuse_overwrite(str(tmp_path / 'empty'), '--out')  # nothing to lose
    (tmp_path / 'maps').mkdir()
    (tmp_path / 'maps' / 'a.png').write_bytes(b'x')
    with pytest.raises(FileExistsError, match=r"--out '.*maps': the "
                       'directory already exists; refusing to overwrite it. '
                       r'Pass --force to replace it, or choose another path'):
        refuse_overwrite(str(tmp_path / 'maps'), '--out')
    (tmp_path / 'p.pkl').write_bytes(b'x')
    with pytest.raises(FileExistsError, match='the file already exists'):
        refuse_overwrite(str(tmp_path / 'p.pkl'), '--out')


def test_test_out_needs_force(tmp_path, demo_digits):
    ckpt = str(tmp_path / 'untrained.pth')
    save_untrained(DEMO_CFG, ckpt)
    out = tmp_path / 'preds.pkl'
    out.write_bytes(b'earlier predictions')
    opts = ['--work-dir', str(tmp_path / 'w'), '--cfg-options',
            f'test_dataloader.dataset.data_root={demo_digits}',
            'test_dataloader.dataset.indices=16',
            'test_dataloader.num_workers=0']
    proc = run_tool(['tools/test.py', DEMO_CFG, ckpt, '--out', str(out)] +
                    opts, check=False)
    assert proc.returncode != 0
    assert (f"--out '{out}': the file already exists; refusing to overwrite "
            'it. Pass --force to replace it') in proc.stderr
    assert out.read_bytes() == b'earlier predictions'

    run_tool(['tools/test.py', DEMO_CFG, ckpt, '--out', str(out), '--force']
             + opts)
    import pickle
    with open(out, 'rb') as f:
        preds = pickle.load(f)  # written by this test's own run
    assert len(preds) == 16


def test_pe_analysis_needs_force(tmp_path, demo_digits):
    ckpt = str(tmp_path / 'untrained.pth')
    save_untrained(DEMO_CFG, ckpt)
    out = tmp_path / 'analysis'
    tool = load_tool('tools/analysis_tools/analyze_pe.py')
    args = [osp.join(REPO_ROOT, DEMO_CFG), ckpt, '--img-dir',
            osp.join(demo_digits, 'val', '0'), '--layers', '1',
            '--out-dir', str(out)]
    tool.main(args + ['--num-images', '2'])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert 'pe_analysis.json' in before
    with pytest.raises(SystemExit, match=(
            f"--out-dir '{out}' already holds an analysis "
            r'\(correlation.png, layer01_maps.png, norm_maps.png, '
            r'pe_analysis.json, pe_maps.npz\); refusing to overwrite it. '
            'Pass --force to replace it, or choose another --out-dir.')):
        tool.main(args + ['--num-images', '3'])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    tool.main(args + ['--num-images', '3', '--force'])
    with open(out / 'pe_analysis.json') as f:
        assert json.load(f)['num_images'] == 3

    plot = load_tool('tools/analysis_tools/plot_pe_correlation.py')
    fig = tmp_path / 'corr.png'
    fig.write_bytes(b'earlier figure')
    with pytest.raises(SystemExit, match=(
            f"--out '{fig}' already exists; refusing to overwrite it. Pass "
            '--force to replace it, or choose another --out.')):
        plot.main([str(out / 'pe_analysis.json'), '--out', str(fig)])
    assert fig.read_bytes() == b'earlier figure'
    plot.main([str(out / 'pe_analysis.json'), '--out', str(fig), '--force'])
    assert fig.read_bytes().startswith(b'\x89PNG')
