"""Intake's CDK app: one stack composed of one construct per capability (see DESIGN.md, Deploy)."""
