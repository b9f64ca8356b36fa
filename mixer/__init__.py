"""mixer's data plane: domains, mixtures, sampling, the MixtureLoader and exports."""

from mixer.errors import MixerError
from mixer.mixture import Mixture, Schedule
from mixer.workspace import Workspace, open_workspace

__version__ = "0.1.0"

__all__ = ["MixerError", "Mixture", "Schedule", "Workspace", "open_workspace", "__version__"]
