"""Typed, strict configuration: what one training run is, and what an experiment is.

A *run* config (`RunConfig`) describes one training run: data, model, mixing
strategy, optimiser, what to capture, and the seed. An *experiment* file
(`experiments/*.yaml`) holds a `base` run config, named `arms` that override parts of
it (a strategy, a regularizer), the `seeds` every arm is trained with, and the
`analysis` settings. Both are YAML; both are parsed strictly (see `repflat.strict`), and
every run directory keeps its resolved `config.yaml`, which is itself a valid run
config.

This module never imports torch, so the analysis side may read configs too.
"""
from repflat.config.launcher import LauncherConfig
from repflat.config.loading import (Experiment, dump_yaml, is_experiment, load_experiment,
                                  load_run_config, parse_experiment, read_yaml)
from repflat.config.schema import (AnalysisConfig, CaptureConfig, Cnn1dModel, DataConfig,
                                     DigitsData, EvalConfig, GruModel, ImageData,
                                     MixingConfig, MLPModel, Mnist1dData,
                                     ModelConfig, ResNetModel, RunConfig, SpiralsData, Strategy,
                                     TargetModel, TorchvisionModel, TrainConfig)
from repflat.config.toy import (ArraysData, BlobsData, CirclesData, CsvData,
                                GaussianQuantilesData, MoonsData, XorData)

__all__ = ["ArraysData", "BlobsData", "CirclesData", "CsvData", "GaussianQuantilesData",
           "MoonsData", "XorData", "AnalysisConfig", "CaptureConfig", "Cnn1dModel", "DataConfig", "DigitsData",
           "EvalConfig", "Experiment", "GruModel", "ImageData", "LauncherConfig", "MLPModel", "MixingConfig",
           "Mnist1dData", "ModelConfig", "ResNetModel", "RunConfig", "SpiralsData", "Strategy", "TargetModel",
           "TorchvisionModel", "TrainConfig",
           "dump_yaml", "is_experiment", "load_experiment", "load_run_config",
           "parse_experiment", "read_yaml"]
