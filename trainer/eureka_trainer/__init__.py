"""Eureka's trainer: the RL loop of MM-EUREKA on Ray (rollout, rewards, filter, advantages, update).

Heavy libraries (torch, ray, vllm, deepspeed) are imported lazily, inside the modules that need them.
"""

__version__ = "0.1.0"
