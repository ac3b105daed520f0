"""The config files in force and the check of every section, key and value in them.

Luigi ignores what it does not know: `[trian] epochs = 3` or `[train] epoch = 3` leave the
default in force, `cache = "/tmp/x"` makes a folder named `"`, and a LUIGI_CONFIG_PATH naming a
missing file falls back to the embedded profile. Here each of these is an error naming the
file, section, key and value, with a did-you-mean for a misspelt name.

A section is known when a Luigi class of that name is registered (the pipeline's config
sections, Luigi's own, and task classes, whose parameters may be set in a section named like
the task) or when it is one of Luigi's sections read without a class (LUIGI_SECTIONS, whose
keys are Luigi's business). A registered class's section may only hold its parameters, each
value must parse as the parameter does (Luigi's parse errors name neither file nor value).
"""

from __future__ import annotations

import configparser
import difflib
import os
from dataclasses import dataclass
from typing import Mapping

import luigi
import luigi.batch_notifier  # noqa: F401  (registers [batch_email])
import luigi.retcodes  # noqa: F401  (registers [retcode]; the luigi command imports it anyway)
from luigi.configuration import LuigiConfigParser
from luigi.task_register import Register, TaskClassException

LUIGI_SECTIONS = ("DEFAULT", "core", "cors", "resources", "logging", "task_history", "hadoop",
                  "hdfs", "webhdfs", "hive", "spark", "pig", "scalding", "mysql", "postgres",
                  "redshift", "elasticsearch", "kubernetes", "datadog", "prometheus")
"""Sections of Luigi's configuration documentation that Luigi (or its contrib modules) reads
key by key rather than through a registered class: any key is accepted there."""

_RAW_DEFAULT = "\x00 no default section"
"""configparser's default-section name while reading a file raw, so that [DEFAULT] is read
as a section of its own rather than merged into every other section."""


class ConfigError(ValueError):
    """A setting out of range or missing, or a config file, section, key or value that Luigi
    would ignore or misread; the message names it and says how to fix it."""


@dataclass(frozen=True)
class Setting:
    """One ``key = value`` line in force: the file that set it last, the raw value and the
    value Luigi reads (after ``%(name)s`` and ``${ENV}`` interpolation)."""

    file: str
    raw: str
    value: str


def config_paths() -> list[str]:
    """The config files Luigi reads, in order (a later file's values win)."""
    return [path for path in LuigiConfigParser._config_paths if os.path.isfile(path)]


def check_environment(environ: Mapping[str, str]) -> None:
    """LUIGI_CONFIG_PATH must name an existing file: Luigi only warns, then runs the embedded
    profile and writes into the current folder."""
    path = environ.get("LUIGI_CONFIG_PATH")
    if path and not os.path.isfile(path):
        raise ConfigError(f"LUIGI_CONFIG_PATH={path}: no such config file")


def read_settings(paths: list[str]) -> dict[tuple[str, str], Setting]:
    """Every (section, key) set in the files, with the file that sets it last; a file that does
    not parse, or a value that cannot be interpolated, is an error naming it."""
    merged = configparser.ConfigParser(interpolation=LuigiConfigParser._DEFAULT_INTERPOLATION)
    merged.optionxform = str
    where: dict[tuple[str, str], str] = {}
    for path in paths:
        raw = configparser.ConfigParser(interpolation=None, default_section=_RAW_DEFAULT)
        raw.optionxform = str
        try:
            raw.read(path, encoding="utf-8")
            merged.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: cannot be parsed: "
                                  + " ".join(str(error).split())) from None
        where.update({(section, key): path for section in raw.sections() for key in raw[section]})
    settings = {}
    for (section, key), path in where.items():
        raw = merged.get(section, key, raw=True)
        try:
            value = merged.get(section, key)
        except configparser.Error as error:
            raise ConfigError(f"{path}: [{section}] {key} = {raw}: cannot be interpolated "
                                  f"({' '.join(str(error).split())}); write %% for a literal %"
                                  ) from None
        settings[(section, key)] = Setting(path, raw, value)
    return settings


def registered_sections() -> dict[str, type | None]:
    """Every registered Luigi class by section name (None where two classes share a name)."""
    sections = {}
    for name in Register.task_names():
        try:
            sections[name] = Register.get_task_cls(name)
        except TaskClassException:
            sections[name] = None
    return sections


def check_settings(settings: Mapping[tuple[str, str], Setting],
                   sections: Mapping[str, type | None], unknown_sections_allowed: bool) -> None:
    """Refuse, naming file, section, key and value: a quoted value, a section that is neither
    registered nor Luigi's (unless ``unknown_sections_allowed``: before the task classes are
    defined, a task's section is not known yet), a key that is not a parameter of its section's
    class, and a value its parameter cannot parse."""
    for (section, key), setting in settings.items():
        where = f"{setting.file}: [{section}] {key} = {setting.raw}"
        if len(setting.raw) >= 2 and setting.raw[0] == setting.raw[-1] and setting.raw[0] in "\"'":
            raise ConfigError(f"{where}: drop the quotes (values are taken literally, "
                                  "quotes included)")
        if section in LUIGI_SECTIONS:
            continue
        if section not in sections:
            if unknown_sections_allowed:
                continue
            raise ConfigError(f"{setting.file}: unknown section [{section}]"
                                  + _did_you_mean(section, [*sections, *LUIGI_SECTIONS], "[{}]"))
        if sections[section] is None:
            continue
        params = dict(sections[section].get_params())
        param = params.get(key.replace("-", "_"))
        if param is None:
            raise ConfigError(f"{where}: unknown key"
                                  + _did_you_mean(key, list(params), "{}"))
        _check_value(param, setting.value, where)


def _check_value(param: luigi.Parameter, value: str, where: str) -> None:
    """The value must parse as the parameter parses it (tasks' choices end with SystemExit)."""
    try:
        param.normalize(param.parse(value))
    except (Exception, SystemExit) as error:
        reason = str(error).removeprefix("error: ") or type(error).__name__
        raise ConfigError(f"{where}: not a valid value ({reason})") from None


def _did_you_mean(name: str, candidates: list[str], form: str) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"; did you mean {form.format(close[0])}?" if close else ""


def check_config(unknown_sections_allowed: bool) -> None:
    """Check the environment and every config file in force (see `check_settings`)."""
    check_environment(os.environ)
    check_settings(read_settings(config_paths()), registered_sections(),
                   unknown_sections_allowed)


def source_of(section: str, key: str) -> str | None:
    """The config file that sets ``[section] key`` (the last one read), or None if none does."""
    settings = read_settings(config_paths())
    found = [settings[(section, name)].file for name in (key, key.replace("_", "-"))
             if (section, name) in settings]
    return found[0] if found else None
