"""The loop itself, as functions every front end calls: the benchmark, ``shopaug run``, serving.

load a data source -> split it by protocol -> build the training data (with the item side) ->
generate and filter samples -> fit models per seed -> rank the test cases -> slices and
comparisons. ``shopaug bench rec``, the pipeline's stages and ``shopaug train`` differ only in
where results go (a JSON file, a stage cache, a serving bundle), so each step lives here once.
Metrics, ranking, statistics and reports stay in :mod:`shopaug.evaluate`, which this builds on.
"""

from shopaug.workflow.experiment import (
    SEED_PARAMS,
    AugmentedTrain,
    Experiment,
    ModelRuns,
    label_and_name,
    model_labels,
    model_seeds,
    run_experiment,
    run_model,
    write_results,
)
from shopaug.workflow.results import (
    COMPARED_METRICS,
    case_slices,
    compare_models,
    per_user_frame,
    summarize_model,
)
from shopaug.workflow.setup import (
    DataSetup,
    item_side,
    load_dataset,
    prepare_training,
    split_dataset,
    split_training_data,
)

__all__ = [
    "COMPARED_METRICS",
    "SEED_PARAMS",
    "AugmentedTrain",
    "DataSetup",
    "Experiment",
    "ModelRuns",
    "case_slices",
    "compare_models",
    "item_side",
    "label_and_name",
    "load_dataset",
    "model_labels",
    "model_seeds",
    "per_user_frame",
    "prepare_training",
    "run_experiment",
    "run_model",
    "split_dataset",
    "split_training_data",
    "summarize_model",
    "write_results",
]
