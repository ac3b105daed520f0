"""Settings checked before any work: every config file, section, key and value in force, and
the settings only a whole run would otherwise find wrong ([fusion] paths, finetune_from, seed)."""

import luigi
import pytest
from luigi.configuration import LuigiConfigParser

from pipeline import config
from pipeline.config_files import ConfigError, check_environment


class ConfiguredTask(luigi.Task):
    """A task whose parameters a config section named like it may set."""

    datasets = luigi.ListParameter(default=["synthetic"])
    epochs = luigi.IntParameter(default=1)


@pytest.fixture
def use_config(tmp_path, monkeypatch):
    """Make Luigi read only the given config text (returns the file's path)."""
    path = tmp_path / "tiny.cfg"

    def use(text: str):
        path.write_text(text)
        monkeypatch.setattr(LuigiConfigParser, "_config_paths", [str(path)])
        monkeypatch.setattr(LuigiConfigParser, "_instance", None)
        monkeypatch.setenv("LUIGI_CONFIG_PATH", str(path))
        return path
    yield use
    LuigiConfigParser._instance = None


def check_everything():
    config.preflight()
    config.check_task_sections()


def test_the_embedded_and_paper_configs_pass():
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    for name in ("luigi.cfg", "configs/paper.cfg"):
        settings = config.files.read_settings([str(repo / name)])
        config.files.check_settings(settings, {**config.files.registered_sections(),
                                               "ReproducePaper": None}, False)


def test_the_paper_profile_inherits_no_setting_of_the_embedded_profile():
    """configs/paper.cfg is read after luigi.cfg: every shape, budget and training setting the
    embedded default sets must be set again for the paper, or the CPU profile's value leaks in
    (the paper profile once trained on luigi.cfg's snippets and test segments)."""
    import configparser
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    embedded, paper = configparser.ConfigParser(), configparser.ConfigParser()
    embedded.read(repo / "luigi.cfg")
    paper.read(repo / "configs" / "paper.cfg")
    machine = {("flow", "processes"), ("flow", "batch_pairs")}
    leaked = [f"[{section}] {key}"
              for section in ("video", "flow", "convnet", "model", "train", "evaluate")
              for key in embedded[section]
              if (section, key) not in machine and not paper.has_option(section, key)]
    assert leaked == []
    assert (paper["train"]["snippet"], paper["evaluate"]["segments"],
            paper["evaluate"]["length"]) == ("30", "25", "30")


def test_unknown_section_is_an_error_with_a_did_you_mean_once_tasks_are_defined(use_config):
    path = use_config("[trian]\nepochs = 3\n")
    config.preflight()  # a task's section may still be defined after the settings are read
    with pytest.raises(ConfigError, match=rf"^{path}: unknown section \[trian\]; did you mean "
                                          r"\[train\]\?$"):
        config.check_task_sections()


def test_unknown_key_is_an_error_with_a_did_you_mean(use_config):
    path = use_config("[train]\nepoch = 3\n")
    with pytest.raises(ConfigError, match=rf"^{path}: \[train\] epoch = 3: unknown key; did you "
                                          r"mean epochs\?$"):
        config.preflight()


def test_a_task_section_may_set_the_tasks_parameters_only(use_config):
    use_config('[ConfiguredTask]\ndatasets = ["ucf101", "hmdb51"]\nepochs = 2\n')
    check_everything()
    path = use_config("[ConfiguredTask]\ndataset = ucf101\n")
    with pytest.raises(ConfigError, match=rf"^{path}: \[ConfiguredTask\] dataset = ucf101: "
                                          r"unknown key; did you mean datasets\?$"):
        check_everything()


def test_luigis_own_sections_are_kept_and_their_classes_keys_checked(use_config):
    use_config("[core]\nlog_level = WARNING\nworker-keep-alive = false\n[retcode]\n"
               "task_failed = 30\n[worker]\nkeep_alive = false\n[resources]\ngpu = 1\n"
               "[scheduler]\nretry-delay = 60\n[task_history]\ndb_connection = sqlite://\n")
    check_everything()
    path = use_config("[worker]\nkeep_alvie = true\n")
    with pytest.raises(ConfigError, match=rf"^{path}: \[worker\] keep_alvie = true: unknown key; "
                                          r"did you mean keep_alive\?$"):
        check_everything()


def test_a_missing_luigi_config_path_is_an_error():
    with pytest.raises(ConfigError, match=r"^LUIGI_CONFIG_PATH=/no/such.cfg: no such config file$"):
        check_environment({"LUIGI_CONFIG_PATH": "/no/such.cfg"})
    check_environment({})


@pytest.mark.parametrize("line", ['[paths]\ncache = "/tmp/x"', "[convnet]\nweights = 'none'"])
def test_quoted_values_are_an_error(use_config, line):
    path = use_config(line + "\n")
    section, setting = line.split("\n")
    with pytest.raises(ConfigError, match=rf"^{path}: \{section[:-1]}\] {setting}: drop the "
                                          r"quotes"):
        config.preflight()


@pytest.mark.parametrize("line, reason", [("[train]\nepochs = three", "invalid literal"),
                                          ("[run]\ndataset = ucf102", "valid choice"),
                                          ("[flow]\nbackend = cuda", "valid choice"),
                                          ("[run]\nstrict = maybe", "")])
def test_a_value_that_does_not_parse_names_file_section_key_and_value(use_config, line, reason):
    path = use_config(line + "\n")
    section, setting = line.split("\n")
    with pytest.raises(ConfigError, match=rf"^{path}: \{section[:-1]}\] {setting}: not a valid "
                                          rf"value \(.*{reason}"):
        config.preflight()


def test_flow_batch_pairs_below_one_is_an_error(use_config):
    path = use_config("[flow]\nbatch_pairs = 0\n")
    with pytest.raises(ConfigError, match=rf"^\[flow\] batch_pairs .*must be >= 1, got 0.*{path}"):
        config.preflight()


def test_a_file_that_does_not_parse_is_named(use_config):
    path = use_config("[train]\nepochs\n")
    with pytest.raises(ConfigError, match=rf"^{path}: cannot be parsed: .*line 2.*'epochs"):
        config.preflight()


@pytest.mark.parametrize("template, message", [
    ("{tmp}/scores/idt_{{dataset}}_split{{split}}.csv", None),
    ("{tmp}/scores/idt_{{dataset}}_{{fold}}.csv", r"holds \{fold\}: a path may hold only"),
    ("{tmp}/missing/idt_{{dataset}}.csv", r"missing does not exist"),
    ("{tmp}/scores/idt.csv", r"idt.csv does not exist"),
    ("{tmp}/scores/idt_{{dataset.csv", r"expected '\}'"),
])
def test_fusion_paths_are_checked_before_any_work(use_config, tmp_path, template, message):
    (tmp_path / "scores").mkdir()
    value = template.format(tmp=tmp_path)
    path = use_config(f"[fusion]\nidt = {value}\n")
    if message is None:
        config.preflight()
        return
    with pytest.raises(ConfigError, match=rf"^\[fusion\] idt = .*{message}.*\(set in {path}\)$"):
        config.preflight()


def test_finetune_from_must_be_a_vgg16_layer(use_config):
    path = use_config("[convnet]\nfinetune_from = fc9\n")
    with pytest.raises(ConfigError, match=rf"^\[convnet\] finetune_from = fc9 is not a VGG-16 "
                                          rf"layer; choose one of block1_conv1, .* \(set in {path}\)"):
        config.preflight()


def test_vgg16_layers_are_keras_ones():
    from models import vgg16
    names = [layer.name for layer in vgg16.build_vgg16("rgb", 2, 32).layers]
    assert tuple(names[1:]) == config.VGG16_LAYERS


def test_seed_must_not_be_negative(use_config):
    path = use_config("[run]\nseed = -1\n")
    with pytest.raises(ConfigError, match=rf"^\[run\] seed must be >= 0, got -1 \(set in {path}\)"):
        config.preflight()


@pytest.mark.parametrize("value", ["0", "21"])
def test_replicates_are_bounded(use_config, value):
    path = use_config(f"[run]\nreplicates = {value}\n")
    with pytest.raises(ConfigError, match=rf"^\[run\] replicates must be in \[1, 20\], got "
                                          rf"{value} \(set in {path}\)"):
        config.preflight()


def test_each_replicate_has_its_own_training_seed(use_config):
    use_config("[run]\nseed = 7\nreplicates = 3\n")
    assert [config.run().training_seed(k) for k in range(3)] == [7, 1007, 2007]
    with pytest.raises(ValueError, match="replicate is an integer >= 0, got -1"):
        config.run().training_seed(-1)
