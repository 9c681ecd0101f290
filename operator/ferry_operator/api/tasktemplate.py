"""The TaskTemplate resource: shared SyncTask fields; a task with templateRef merges them."""

from __future__ import annotations

from pydantic import Field

from ferry_operator.api.base import Condition, Model, Resource
from ferry_operator.api.synctask import TaskFields

__all__ = ["TaskTemplate", "TaskTemplateSpec", "TaskTemplateStatus"]


class TaskTemplateSpec(Model):
    """The shared fields."""

    template: TaskFields = Field(description="SyncTask spec fields used as defaults.")


class TaskTemplateStatus(Model):
    """Written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The generation the status describes."
    )
    users: int | None = Field(default=None, description="SyncTasks referring to this template.")
    conditions: list[Condition] | None = Field(default=None, description="Ready.")


class TaskTemplate(Resource):
    """A whole TaskTemplate manifest or API object (status is not parsed)."""

    spec: TaskTemplateSpec = Field(description="The template.")
