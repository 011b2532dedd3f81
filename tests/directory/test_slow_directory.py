"""A slow directory holds up only the change that is waiting for it.

Changes ask the directory (who owns the repository, who is in the team, the owners to tell)
before their transaction begins. Asked inside it, one slow answer held the audit chain's head (on
PostgreSQL) or the database's write lock (SQLite's IMMEDIATE transactions) for as long as it
took, and every other writer of the portal waited behind it.

The directory here is the test slapd behind a proxy that holds the connections opened while it is
told to: the change in that thread waits for the directory until the test releases it, and the
other change must be done meanwhile, on both databases.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from django.db import connection

from delegations import services
from delegations.models import DelegationRequest, RequestStatus
from stack.processes import LOOPBACK
from tests.directory_settings import DEMO_OWNERS, directory_user
from tests.factories import make_user, submit_request

pytestmark = pytest.mark.django_db(transaction=True)

# Generous: a change that is not held finishes in well under a second.
WAIT_SECONDS = 20


class HoldingProxy:
    """A TCP proxy to the directory. Connections opened while `holding_new` is set send nothing
    on until `release()`: whoever opened one waits for the directory's first answer."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port = self.listener.getsockname()[1]
        self.holding_new = False
        self.waiting = threading.Event()  # a held connection has a request waiting
        self._released = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        for sock in [self.listener, *self._sockets]:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection((LOOPBACK, self.target_port))
            self._sockets += [client, server]
            held = self.holding_new
            threading.Thread(target=self._pipe, args=(client, server, held), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, held: bool) -> None:
        try:
            while data := source.recv(65536):
                if held:
                    self.waiting.set()
                    self._released.wait()
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                sock.close()


@pytest.fixture
def slow_directory(use_directory, ldap_tree) -> Iterator[HoldingProxy]:
    proxy = HoldingProxy(ldap_tree.port)
    # Operations wait for as long as the proxy holds them, not for PORTAL_LDAP_TIMEOUT.
    use_directory(PORTAL_LDAP_URI=f"ldap://{LOOPBACK}:{proxy.port}", PORTAL_LDAP_TIMEOUT=60.0)
    yield proxy
    proxy.close()


@pytest.fixture
def nginx(repository, rq_queue):
    """The test repository, owned (as in the demo tree) by the LDAP group owners:dev/nginx."""
    repository.owners_group = DEMO_OWNERS
    repository.save(update_fields=["owners_group"])
    return repository


def in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Start `call` in a thread with its own database and directory connections; the list gets
    what it returned or raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:
            outcome.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def held_in_the_directory(proxy: HoldingProxy, call: Callable[[], object]):
    """Run `call` in a thread whose directory connection the proxy holds, and wait until it is
    waiting for the directory."""
    proxy.holding_new = True
    thread, outcome = in_thread(call)
    assert proxy.waiting.wait(WAIT_SECONDS), "the held change never asked the directory"
    proxy.holding_new = False
    return thread, outcome


def done_meanwhile(call: Callable[[], object]) -> object:
    """Run `call` in a thread of its own and return its outcome, failing if it is not done in
    good time: it must not wait for the change the directory holds."""
    thread, outcome = in_thread(call)
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive(), "it waited for a change that was waiting for the directory"
    (result,) = outcome
    if isinstance(result, Exception):
        raise result
    return result


@pytest.fixture
def waiting(nginx):
    """alice owns nginx, where bob's request waits for her; lena, a local member (her teams are
    local groups: no directory read of her own), is about to ask too."""
    alice = directory_user("alice")
    pending = submit_request(nginx, directory_user("bob"), team="qa")
    return alice, pending, make_user("lena", teams=("qa",))


def test_a_submission_is_not_held_up_by_an_approval_waiting_for_the_directory(
    slow_directory, nginx, waiting
):
    alice, pending, lena = waiting
    approval, approved = held_in_the_directory(
        slow_directory,
        lambda: services.request_approve(request_id=pending.pk, acting_user=alice),
    )
    submitted = done_meanwhile(lambda: submit_request(nginx, lena, team="qa"))

    assert approval.is_alive()  # the approval was still waiting for the directory all along
    slow_directory.release()
    approval.join(WAIT_SECONDS)
    assert not approval.is_alive()
    assert isinstance(approved[0], DelegationRequest), approved
    assert approved[0].status == RequestStatus.APPROVED
    assert DelegationRequest.objects.get(pk=submitted.pk).status == RequestStatus.PENDING


def test_an_approval_is_not_held_up_by_a_submission_waiting_for_the_directory(
    slow_directory, nginx, waiting
):
    alice, pending, lena = waiting
    # The submission reads the owners to tell (alice) from the directory, and waits there.
    submission, submitted = held_in_the_directory(
        slow_directory, lambda: submit_request(nginx, lena, team="qa")
    )
    approved = done_meanwhile(
        lambda: services.request_approve(request_id=pending.pk, acting_user=alice)
    )

    assert submission.is_alive()
    assert approved.status == RequestStatus.APPROVED
    slow_directory.release()
    submission.join(WAIT_SECONDS)
    assert not submission.is_alive()
    assert isinstance(submitted[0], DelegationRequest), submitted
    assert submitted[0].status == RequestStatus.PENDING
