from mmpvg.registry import OPTIM_WRAPPER_CONSTRUCTORS, register_lazy

# mmpretrain's constructor (the base of ours) imports mmpretrain's models,
# and through them mmdet and mmcv.ops: import it when a config builds it.
register_lazy(OPTIM_WRAPPER_CONSTRUCTORS, 'LayerDecayOptimWrapperConstructor',
              'mmpvg.engine.optimizers.layer_decay_optim_wrapper_constructor')
