"""The generator node: `kalypso generator run` follows its tasks, proves them and gets paid."""

from kalypso.generator.config import GeneratorConfig, MarketConfig
from kalypso.generator.journal import Phase, Task, TaskJournal

__all__ = ["GeneratorConfig", "MarketConfig", "Phase", "Task", "TaskJournal"]
