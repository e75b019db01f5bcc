"""Training: the one loop (`loop`), the hooks defenses compose into it
(`hooks`), jobs that train one or more models (`job`) and the model cache
(`cache`). Import the modules themselves; this package imports nothing, so a
defense can use the loop without pulling in the job runner."""
