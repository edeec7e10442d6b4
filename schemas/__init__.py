"""Pydantic models of tva's contracts: desired state, observed state and the plan.

These modules hold data and pure rules about data only; nothing here does I/O.
"""
