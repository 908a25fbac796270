"""model-index.yml and the metafiles mim reads: every leaf listed once,
every listed config present, every result labelled with its source and
equal to the number the README gives, and mim's own reader knows them."""
import os.path as osp

import pytest
import yaml

from config_convention import CONFIGS, TASK_DIRS, leaves
from mmpvg.testing import REPO_ROOT

METAFILES = [f'configs/{d}/metafile.yml' for d in TASK_DIRS]
PAPER = 'reported by the paper'
MEASURED = 'measured here'


def read(rel):
    with open(osp.join(REPO_ROOT, rel)) as f:
        return yaml.safe_load(f)


def models_of(metafile):
    return read(metafile)['Models']


def test_model_index_imports_one_metafile_per_task_folder():
    assert read('model-index.yml') == {'Import': METAFILES}
    for rel in METAFILES:
        assert osp.isfile(osp.join(REPO_ROOT, rel)), rel


def test_every_leaf_listed_once_and_every_listed_config_exists():
    listed = [m['Config'] for rel in METAFILES for m in models_of(rel)]
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    for cfg in listed:
        assert osp.isfile(osp.join(REPO_ROOT, cfg)), cfg
    assert sorted(osp.relpath(c, 'configs') for c in listed) == leaves()


@pytest.mark.parametrize('metafile', METAFILES)
def test_models_name_their_config_and_collection(metafile):
    meta = read(metafile)
    folder = osp.dirname(metafile)
    collections = {c['Name']: c for c in meta['Collections']}
    for c in collections.values():
        assert osp.isfile(osp.join(REPO_ROOT, c['README'])), c['README']
    with open(osp.join(REPO_ROOT, folder, 'README.md')) as f:
        table = f.read()
    for m in meta['Models']:
        assert m['Config'].startswith(folder + '/'), m['Config']
        # the model name is the config's file name: `mim search --config`
        # and `mim train mmpvg NAME.py` use the same word
        assert m['Name'] == osp.basename(m['Config'])[:-len('.py')]
        assert m['In Collection'] in collections, m['Name']
        assert f'| {m["Name"]} |' in table, (folder, m['Name'])


def readme_forms(value, metric):
    """The ways README.md writes a metric value: AP of the demo as a
    fraction (0.114), everything else as printed in the paper."""
    if 'AP' in metric and value < 100 and value != 0:
        return {f'{value / 100:.3f}', f'{value:g}', f'{value:.2f}'}
    return {f'{value:g}', f'{value:.2f}', f'{value:.1f}'}


@pytest.mark.parametrize('metafile', METAFILES)
def test_results_carry_their_source_and_the_readme_numbers(metafile):
    with open(osp.join(REPO_ROOT, 'README.md')) as f:
        readme = f.read()
    demo = metafile == 'configs/demo/metafile.yml'
    for m in models_of(metafile):
        source = m['Metadata']['Results Source']
        if 'Results' not in m:
            assert source.startswith('none'), m['Name']
            continue
        # the paper's numbers are never shown as measured here, and the
        # demo's (measured) numbers are not the paper's
        assert source.startswith(MEASURED if demo else PAPER), m['Name']
        for result in m['Results']:
            assert {'Task', 'Dataset', 'Metrics'} <= set(result)
            for metric, value in result['Metrics'].items():
                forms = readme_forms(value, metric)
                assert any(s in readme for s in forms), (
                    m['Name'], metric, value)


def test_mims_metafile_reader_knows_every_model():
    # mim search's own parsing (modelindex + mim's table), without an
    # installed wheel: tests/test_tools/test_upstream_tools.py runs the
    # `mim search mmpvg` command on one
    pytest.importorskip('mim')
    from mim.commands.search import convert2df
    from modelindex.load_model_index import load
    df = convert2df(load(osp.join(REPO_ROOT, 'model-index.yml')))
    names = {osp.basename(p)[:-len('.py')] for p in leaves()}
    assert set(df.index) == names
    row = df.loc['deit-tiny-mpvg_8xb128_in1k']
    assert row['imagenet-1k/top_1_accuracy'] == 73.51
    assert row['results_source'].startswith(PAPER)
    row = df.loc['vit-demo-mpvg_1xb64_demo-digits']
    assert row['demo digits/top_1_accuracy'] == 97.49
    assert row['results_source'].startswith(MEASURED)
    assert osp.isdir(CONFIGS)
