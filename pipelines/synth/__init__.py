"""The demo-study generator: `generate.generate_study` writes a realistic, messy demo study
with planted ground truth (see generate.py)."""
