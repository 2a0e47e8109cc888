"""Lightning glue between the PEFT library (``compacter``) and the experiments: data
(tasks, sources, splits, tokenisation) and the LightningModules that train on it."""
