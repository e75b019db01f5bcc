"""SELENA (Tang et al., USENIX Security 2022) in one place: the Split-AI
mechanism (`mechanism`), the training defense (`defense`: `Selena`), the
adaptive attacker's own Split-AI jobs (`attacker`) and its attack
(`attack`: `selena_adaptive`). Importing it registers the defense; the attack
(scikit-learn) registers when raymia.registry.ATTACKS is first read, so a
worker training a SELENA model does not import it."""
from raymia.selena.defense import Selena

__all__ = ["Selena"]
