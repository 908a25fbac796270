"""tools/analysis_tools/benchmark_swin.py: one quick round prints a row per
model, with the parameter counts of the Swin-Ti classifiers."""
import importlib.util
import os.path as osp

from mmpvg.testing import REPO_ROOT


def test_benchmark_swin_prints_every_model(capsys):
    spec = importlib.util.spec_from_file_location(
        'benchmark_swin',
        osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'benchmark_swin.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(['--batch-size', '1', '--repeats', '1', '--warmup', '0'])
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith('| ') and 'params' not in line]
    assert [r.split(' | ')[0] for r in rows] == [
        '| mmpretrain Swin (abs PE)', '| MPVGSwin gap', '| MPVGSwin lape',
        '| MPVGSwin pvg', '| MPVGSwin mpvg']
    params = [float(r.split(' | ')[1]) for r in rows]
    assert params[0] == params[1] == 28.59  # gap is mmpretrain + abs PE
    assert params[4] >= params[3] > params[1]  # PE LayerNorms, LN'_last
