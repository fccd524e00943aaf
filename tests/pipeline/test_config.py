import pytest

from shopaug.pipeline.config import ConfigError, load_config


def write_config(write, body: str):
    return write("run.yaml", body)


AMAZON = "data: {source: amazon, path: some/folder}"
BASE = (
    """
name: t
out: runs/t
"""
    + AMAZON
    + """
models:
  markov: {}
  sasrec: {epochs: 2}
"""
)


def test_a_valid_file_becomes_the_benchmark_config(write, tmp_path):
    config = load_config(write_config(write, BASE + "split: {protocol: C, seed: 3}\n"))
    bench = config.experiment(tmp_path)
    assert bench.protocol == "C" and bench.split_seed == 3
    assert bench.models == ["markov", "sasrec"]
    assert bench.params == {"sasrec": {"epochs": 2}}
    assert bench.augment is None
    assert config.cache.as_posix() == "runs/t/cache"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("evaluation: {seedz: 2}\n", "evaluation.seedz: unknown key"),
        ("colour: red\n", "colour: unknown key"),
        ("evaluation: {seeds: 0}\n", "evaluation.seeds: Input should be greater than"),
        ("split: {protocol: X}\n", "split.protocol"),
        ("augment: {strategies: [crop], params: {crop: {ratio: 5}}}\n", "ratio"),
        ("augment: {strategies: [nope]}\n", "augment.strategies: unknown 'nope'"),
        ("augment: {strategies: [crop], filters: [nope]}\n", "augment.filters: unknown 'nope'"),
    ],
)
def test_bad_keys_and_values_name_the_file_and_the_key(write, extra, expected):
    path = write_config(write, BASE + extra)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_unknown_model_and_data_source_errors(write):
    with pytest.raises(ConfigError, match=r"models\.bert: unknown model"):
        load_config(write_config(write, BASE + "  bert: {}\n"))
    body = BASE.replace(AMAZON, "data: {source: amazon}")
    with pytest.raises(ConfigError, match=r"data\.path: Field required"):
        load_config(write_config(write, body))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write_config(write, "name: [unclosed\n"))


def test_tracking_uri_config_then_environment_then_run_folder(write, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = load_config(write_config(write, BASE))
    assert config.tracking_uri().startswith("sqlite:///")
    assert config.tracking_uri().endswith("runs/t/mlflow.db")
    assert config.artifact_location().endswith("runs/t/mlartifacts")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert config.tracking_uri() == "http://mlflow:5000"
    assert config.artifact_location() is None
    pinned = load_config(write_config(write, BASE + "tracking: {uri: 'http://other:5000'}\n"))
    assert pinned.tracking_uri() == "http://other:5000"


def test_generator_backend_reaches_llm_strategies_unless_they_name_one(write):
    body = BASE + (
        "generator: {backend: fake, params: {seed: 1}}\naugment:\n  strategies: [crop, llm-cold]\n"
    )
    plan = load_config(write_config(write, body)).plan()
    assert plan.params["llm-cold"] == {"generator": "fake", "generator_params": {"seed": 1}}
    assert "crop" not in plan.params
    own = body.replace("[crop, llm-cold]", "[llm-cold]\n  params: {llm-cold: {generator: local}}")
    assert load_config(write_config(write, own)).plan().params["llm-cold"]["generator"] == "local"


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ("markov: {order: abc}", "models.markov.order: expected int >= 1 (default 5), got 'abc'"),
        ("markov: {ordr: 2}", "models.markov.ordr: unknown parameter; did you mean 'order'?"),
        (
            "content: {hidden: 30, n_heads: 4}",
            "models.content.n_heads: hidden=30 must be divisible",
        ),
        ("markvo: {}", "models.markvo: unknown model; did you mean 'markov'?"),
    ],
)
def test_model_parameters_are_checked_when_the_file_is_read(write, models, expected):
    body = BASE.replace("  markov: {}\n", f"  {models}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(write, body))
    assert expected in str(caught.value)


def test_model_parameters_are_kept_in_their_declared_types(write):
    body = BASE.replace("  markov: {}\n", "  markov: {order: '2', smoothing: 10}\n")
    assert load_config(write_config(write, body)).models["markov"] == {
        "order": 2,
        "smoothing": 10.0,
    }


def test_an_unknown_top_level_key_is_named_with_the_key_it_resembles(write):
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(write, BASE.replace("models:", "modles:")))
    assert "modles: unknown key; did you mean 'models'?" in str(caught.value)
    assert "Field required" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"data\.itemz: unknown key; did you mean 'items'\?"):
        load_config(write_config(write, BASE.replace(AMAZON, "data: {source: files, itemz: x}")))


def test_a_missing_file_names_its_key_and_the_file(write, tmp_path):
    items = tmp_path / "nosuch.csv"
    body = BASE.replace(AMAZON, f"data: {{source: files, items: {items}}}")
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(write, body))
    assert f"data.items: {items}: no such file" in str(caught.value)
    folder = BASE.replace(AMAZON, f"data: {{source: files, items: {tmp_path}}}")
    with pytest.raises(ConfigError, match=r"data\.items: .* is a folder, not a file"):
        load_config(write_config(write, folder))
