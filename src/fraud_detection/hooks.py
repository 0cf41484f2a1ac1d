"""Kedro hooks: load `.env` and validate the environment before any node runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from kedro.framework.hooks import hook_impl

from fraud_detection.validation import StartupValidationError, validate_environment

logger = logging.getLogger(__name__)


class StartupValidationHook:
    """Fails a run at start-up, naming what is wrong, instead of deep inside a node.

    The checks to run come from the ``validation`` config of the environment
    (``conf/<env>/validation.yml``), so each environment checks the services it uses.
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        project_path = Path(context.project_path)
        env_file = project_path / ".env"
        # Variables already set in the process win over the file, as users expect.
        if env_file.is_file():
            load_dotenv(env_file, override=False)
            logger.info("Loaded environment variables from %s", env_file)
        try:
            config = context.config_loader["validation"]
        except KeyError:
            config = {}
        problems = validate_environment(config.get("startup_validation", {}), project_path)
        if problems:
            raise StartupValidationError(context.env or "local", problems)
        logger.info("Start-up validation passed for environment '%s'", context.env or "local")
