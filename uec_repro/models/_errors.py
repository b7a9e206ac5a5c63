"""Errors of the policy zoo that are not bad parameters (those are
:class:`~uec_repro.validation.ParameterError`)."""

from __future__ import annotations


class PolicyUnavailableError(OSError):
    """The policy named is valid but its files are not here and cannot be fetched (Hub offline, wheel
    missing)."""
