"""vidistill.train: the one trainer for every stage (see docs/training.md).

trainer.train(config, workdir, model, data) runs a stage; config.base_config() lists its options;
model_api says what a model provides; input.batches makes the data function.
"""
