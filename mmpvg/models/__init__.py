from .backbones import *  # noqa: F401,F403
from .deploy import fold_last_ln_pe  # noqa: F401
from .layers import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
