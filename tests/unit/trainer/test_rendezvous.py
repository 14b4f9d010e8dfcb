"""Learner ranks meet at rank 0's node: rank 0 names the address, every rank then starts.

In a cluster the driver runs on the head pod, which hosts no rank: an address taken there
(the old MASTER_ADDR) is one no rank listens on, and the rendezvous never completes."""

from __future__ import annotations

import os
import socket

import pytest

from eureka_trainer.driver.workers import LearnerWorker, _learner_rank


def test_a_learner_group_without_an_address_from_rank_0_is_refused() -> None:
    before = dict(os.environ)
    with pytest.raises(ValueError, match=r"learner rank 1: no rendezvous address"):
        _learner_rank("torch", None, rank=1, world=2, master="")
    with pytest.raises(ValueError, match=r"learner rank 0: no rendezvous address"):
        _learner_rank("deepspeed", None, rank=0, world=1, master="10.0.0.5")
    assert dict(os.environ) == before  # nothing half-set for the next attempt


def test_rank_0_names_its_own_node_and_a_free_port_before_any_rank_starts() -> None:
    import ray

    worker = LearnerWorker("torch", config=None, threads=1, rank=0, world=2)
    assert not hasattr(worker, "learner")  # constructing builds nothing: `start` does
    host, _, port = worker.free_address().partition(":")
    assert host == ray.util.get_node_ip_address()
    with socket.socket() as sock:  # free now: the store of torch.distributed can bind it
        sock.bind(("", int(port)))
