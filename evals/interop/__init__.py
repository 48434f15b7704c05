"""Interoperability with other evaluation tools: an lm-evaluation-harness model adapter
(`lm_eval_model`, made visible to lm-eval's own command line by `lm_eval_hook`), an export of a run
directory to lm-eval's results layout (`lm_eval_export`) and a cross-check of this project's
MMLU-Pro against lm-eval's own task definition (`crosscheck`). Nothing here is imported by the
harness's own commands at start-up; lm-eval is imported only inside these modules.
"""
