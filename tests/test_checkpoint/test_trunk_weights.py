"""Loading pretrained Swin weights: every layout, all or nothing, both
shapes named."""
import collections
import os

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import CheckpointLoader

from dtl_mm.checkpoint.safe_load import CheckpointError
from dtl_mm.checkpoint.schemes import safe_checkpoint_schemes
from dtl_mm.models import (CheckpointLayoutError, DTLSwinTransformer,
                           PretrainedSwinTransformer)
from helpers.checkpoint_utils import DEMO_SWIN, save
from helpers.swin_utils import TINY, plain_swin, to_microsoft_layout


@pytest.fixture
def source():
    torch.manual_seed(1)
    swin = plain_swin()
    with torch.no_grad():  # output norms away from their init, to see them
        for i in range(4):
            getattr(swin, f'norm{i}').weight.uniform_(0.5, 1.5)
    return swin


def load_into_new(path, cls=DTLSwinTransformer, **kw):
    model = cls(
        init_cfg=dict(type='Pretrained', checkpoint=path), **TINY, **kw)
    model.init_weights()
    return model


def assert_same_trunk(model, source, with_output_norms=True):
    ref = source.state_dict()
    for k, v in model.swin.state_dict().items():
        if k.startswith('norm') and not with_output_norms:
            assert torch.equal(
                v,
                torch.ones_like(v)
                if k.endswith('weight') else torch.zeros_like(v)), k
        else:
            assert torch.equal(v, ref[k]), k


def test_openmmlab_layout_with_and_without_backbone_prefix(tmp_path, source):
    sd = source.state_dict()
    plain = save(tmp_path, 'plain.pth', {'state_dict': sd})
    prefixed = save(
        tmp_path, 'det.pth', {
            'state_dict': {
                **{'backbone.' + k: v
                   for k, v in sd.items()}, 'neck.fpn.weight': torch.zeros(3)
            }
        })
    for path in (plain, prefixed):
        assert_same_trunk(load_into_new(path), source)


def test_microsoft_layout(tmp_path, source):
    path = save(tmp_path, 'ms.pth', to_microsoft_layout(source.state_dict()))
    model = load_into_new(path, variant='dtlv2')
    assert_same_trunk(model, source, with_output_norms=False)
    # identical trunk computation to the mmdet Swin holding those weights
    ref = plain_swin()
    ref.load_state_dict(model.swin.state_dict())
    model.eval(), ref.eval()
    x = torch.randn(1, 3, 64, 64)
    assert all(torch.equal(a, b) for a, b in zip(model(x), ref(x)))


def test_our_own_training_checkpoint(tmp_path, source):
    wrapped = PretrainedSwinTransformer(**TINY)
    wrapped.swin.load_state_dict(source.state_dict())
    sd = {'backbone.' + k: v for k, v in wrapped.state_dict().items()}
    path = save(tmp_path, 'ours.pth', {'state_dict': sd, 'meta': {}})
    assert_same_trunk(load_into_new(path, PretrainedSwinTransformer), source)


def test_missing_weight_raises(tmp_path, source):
    sd = source.state_dict()
    del sd['stages.2.blocks.3.attn.w_msa.qkv.weight']
    path = save(tmp_path, 'missing.pth', sd)
    with pytest.raises(
            CheckpointLayoutError,
            match=r'missing.*stages\.2\.blocks\.3\.attn'):
        load_into_new(path)


def test_wrong_shape_raises_with_both_shapes(tmp_path):
    big_window = plain_swin(window_size=6)  # 11x11 bias tables vs 7x7
    path = save(tmp_path, 'w6.pth', big_window.state_dict())
    with pytest.raises(
            CheckpointLayoutError,
            match=r'relative_position_bias_table: checkpoint '
            r'\(121, 1\) vs model \(49, 1\)'):
        load_into_new(path)


def test_not_a_swin_and_missing_file(tmp_path):
    path = save(tmp_path, 'resnet.pth', {'conv1.weight': torch.zeros(1)})
    with pytest.raises(CheckpointLayoutError, match='not a Swin checkpoint'):
        load_into_new(path)
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_into_new(str(tmp_path / 'nope.pth'))


def test_mmengine_checkpoint_types_load_safely(tmp_path):
    hub = MessageHub.get_instance('dtl_mm_test')
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_scalar('train/lr', 1e-4)
    hub.update_info('iter', 7)
    ckpt = {
        'meta': {
            'epoch': 1,
            'iter': 7,
            'seed': np.int64(3)
        },
        'message_hub': hub.state_dict(),
        'param_schedulers': [{
            'milestones': collections.Counter({27: 1})
        }],
        'state_dict': {
            'w': torch.ones(2)
        },
    }
    path = save(tmp_path, 'epoch_1.pth', ckpt)
    with safe_checkpoint_schemes():  # as DTLRunner loads
        loaded = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert buf.current() == 0.5
    assert loaded['param_schedulers'][0]['milestones'][27] == 1


class RunsCode:

    def __reduce__(self):
        return (os.system, ('touch PWNED_BY_CHECKPOINT', ))


def test_checkpoint_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = save(tmp_path, 'evil.pth', {'state_dict': {}, 'x': RunsCode()})
    with pytest.raises(CheckpointError, match='evil.pth.*refused'), \
            safe_checkpoint_schemes():
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert not (tmp_path / 'PWNED_BY_CHECKPOINT').exists()


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = save(tmp_path, 'good.pth', {'state_dict': {'w': torch.ones(1000)}})
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])
    with pytest.raises(
            CheckpointError, match='good.pth.*truncated or corrupt'), \
            safe_checkpoint_schemes():
        CheckpointLoader.load_checkpoint(path, map_location='cpu')


def test_partial_swin_in_checkpoint_is_refused():
    backbone = DTLSwinTransformer(**DEMO_SWIN)
    state = {'backbone.' + k: v for k, v in backbone.state_dict().items()}
    del state['backbone.swin.stages.2.blocks.1.attn.w_msa.qkv.weight']
    holder = torch.nn.Module()
    holder.backbone = DTLSwinTransformer(**DEMO_SWIN)
    with pytest.raises(CheckpointLayoutError, match='only part of the Swin'):
        holder.load_state_dict(state)


def test_swin_b_weights_into_swin_l_config(tmp_path):
    small = plain_swin()  # embed 32 stands in for Swin-B, 24 for Swin-L
    path = str(tmp_path / 'b.pth')
    torch.save({'state_dict': small.state_dict()}, path)
    model = DTLSwinTransformer(
        init_cfg=dict(type='Pretrained', checkpoint=path),
        **dict(TINY, embed_dims=24))
    with pytest.raises(
            CheckpointLayoutError,
            match=r'patch_embed.projection.weight: checkpoint '
            r'\(32, 3, 4, 4\) vs model \(24, 3, 4, 4\)'):
        model.init_weights()


def whole_model_file(swin_state):
    """A dtl_mm detector's training checkpoint around ``swin_state``: the
    side network, neck, head and optimizer state the loader must ignore."""
    sd = {'backbone.swin.' + k: v for k, v in swin_state.items()}
    sd.update({
        'backbone.csn.stages.7.blocks.9.w': torch.zeros(2),
        'neck.fpn_convs.0.conv.weight': torch.zeros(2),
        'bbox_head.retina_cls.weight': torch.zeros(2),
    })
    return {'state_dict': sd, 'optimizer': {'state': {}}, 'meta': {}}


def with_fifth_stage(swin_state):
    """Stage 3's blocks again as a stage 4: a Swin with more stages."""
    extra = {
        k.replace('stages.3.', 'stages.4.', 1): v
        for k, v in swin_state.items() if k.startswith('stages.3.blocks.')
    }
    return dict(swin_state, **extra)


def whole_model_with_fifth_stage(swin_state):
    return whole_model_file(with_fifth_stage(swin_state))


# case -> (the file's Swin depths, its file, extra blocks, file depths)
DEEPER = {
    'stage-2-whole-model': ((2, 2, 8, 2), whole_model_file,
                            r'stages\.2\.blocks\.6\.\.7', r'\(2, 2, 8, 2\)'),
    'stage-2-microsoft': ((2, 2, 8, 2), to_microsoft_layout,
                          r'stages\.2\.blocks\.6\.\.7', r'\(2, 2, 8, 2\)'),
    'one-more-block':
    ((2, 3, 6, 2), dict, r'stages\.1\.blocks\.2\)', r'\(2, 3, 6, 2\)'),
    'fifth-stage': ((2, 2, 6, 2), whole_model_with_fifth_stage,
                    r'stages\.4\.blocks\.0\.\.1', r'\(2, 2, 6, 2, 2\)'),
}


@pytest.mark.parametrize('case', DEEPER)
def test_deeper_swin_of_the_same_widths_is_refused(tmp_path, case):
    """A Swin-S-like file (more blocks in a stage, or more stages) into a
    Swin-T-like config: every model weight has a same-shaped tensor in the
    file, so only the file's extra blocks tell."""
    depths, make, extra, file_depths = DEEPER[case]
    path = save(tmp_path, 'deeper.pth',
                make(plain_swin(depths=depths).state_dict()))
    with pytest.raises(
            CheckpointLayoutError,
            match=rf'deeper\.pth .*{extra}.*file depths {file_depths}, '
            r'config depths \(2, 2, 6, 2\)'):
        load_into_new(path)


def test_what_a_whole_model_file_holds_besides_the_swin_is_ignored(
        tmp_path, source):
    path = save(tmp_path, 'whole.pth', whole_model_file(source.state_dict()))
    assert_same_trunk(load_into_new(path), source)
