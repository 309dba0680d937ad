"""A FastAPI service on activerecord models, over HTTP: records as response models and request
bodies, on every backend, with sync (``def``) and async (``async def``) endpoints."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from activerecord import (
    ActiveRecord,
    DecimalField,
    ForeignKeyField,
    PrimaryKeyField,
    StringField,
    TimestampField,
    ValidationError,
    belongs_to,
    generate_id,
    has_many,
    validates,
)

from .dual import IO


class Account(ActiveRecord):
    __tablename__ = "api_accounts"
    __ids_as_strings__ = True

    id: int = PrimaryKeyField(big=True, autoincrement=False, default=generate_id)
    owner: str = StringField(max_length=40)
    email: str | None = StringField(max_length=100, nullable=True)
    created_at: dt.datetime = TimestampField(auto_now_add=True)

    transfers = has_many("Transfer")

    @validates("email")
    def _email_has_at(self, value: str) -> str | None:
        return None if "@" in value else "must contain @"


class Transfer(ActiveRecord):
    __tablename__ = "api_transfers"
    __ids_as_strings__ = True

    id: int = PrimaryKeyField(big=True, autoincrement=False, default=generate_id)
    account_id: int = ForeignKeyField(Account, on_delete="CASCADE")
    amount: decimal.Decimal = DecimalField(precision=12, scale=2)
    memo: str = StringField(max_length=60, default="")

    account = belongs_to(Account)


AccountUpdate = Account.pydantic_model("update")
TransferInput = Transfer.pydantic_model("input", exclude=["id", "account_id"])
AccountWithTransfers = Account.pydantic_model(include=["transfers"])


def run_sync(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run an endpoint body written with `IO` in sync mode: its sync calls never suspend, so it
    finishes on the first step, with no event loop in the thread (as sync code runs)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("a sync endpoint awaited real I/O")


class _Inline:
    """What an endpoint body calls: the async twins in async mode; in sync mode the sync methods,
    called right where the body runs (FastAPI's thread pool for a ``def`` endpoint)."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async

    def __call__(self, target: Any) -> Any:
        return _InlineBound(target, self.is_async)


class _InlineBound:
    def __init__(self, target: Any, is_async: bool) -> None:
        self._target = target
        self._async = is_async

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if self._async:
            return getattr(self._target, "a" + name)  # type: ignore[no-any-return]
        method = getattr(self._target, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


def make_app(mode: IO) -> FastAPI:
    """The service; each endpoint is written once and served as ``async def`` or as ``def``."""
    app = FastAPI()
    io = _Inline(mode.is_async)

    @app.exception_handler(ValidationError)
    async def invalid(request: Request, exc: ValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": exc.errors})

    def route(method: str, path: str, **options: Any) -> Callable[[Callable[..., Any]], None]:
        def add(body: Callable[..., Coroutine[Any, Any, Any]]) -> None:
            endpoint: Callable[..., Any]
            if io.is_async:
                endpoint = body
            else:

                def endpoint(**kwargs: Any) -> Any:
                    return run_sync(body(**kwargs))

                # FastAPI reads the parameters and the response model from the signature.
                endpoint.__signature__ = inspect.signature(body, eval_str=True)  # type: ignore[attr-defined]
                endpoint.__name__ = body.__name__
            app.add_api_route(path, endpoint, methods=[method], **options)

        return add

    async def account_or_404(account_id: int) -> Account:
        account = await io(Account.find_by_id(account_id)).one_or_none()
        if account is None:
            raise HTTPException(status_code=404, detail="no such account")
        return account

    @route("POST", "/accounts", status_code=201)
    async def open_account(account: Annotated[Account, Body()]) -> Account:
        return await io(account).save()

    @route("GET", "/accounts")
    async def list_accounts() -> list[Account]:
        return await io(Account.find().order_by("owner")).all()

    @route("GET", "/accounts/{account_id}")
    async def read_account(account_id: int) -> Account:
        return await account_or_404(account_id)

    @route("PATCH", "/accounts/{account_id}")
    async def change_account(account_id: int, changes: AccountUpdate) -> Account:  # type: ignore[valid-type]
        account = await account_or_404(account_id)
        return await io(account).update(**changes.model_dump(exclude_unset=True))  # type: ignore[attr-defined]

    @route("POST", "/accounts/{account_id}/transfers", status_code=201)
    async def add_transfer(account_id: int, body: TransferInput) -> Transfer:  # type: ignore[valid-type]
        account = await account_or_404(account_id)
        transfer = Transfer.from_pydantic(body, account_id=account.id)
        return await io(transfer).save()

    @route("GET", "/accounts/{account_id}/statement", response_model=AccountWithTransfers)
    async def statement(account_id: int) -> Any:
        return await io(Account.find().where(id=account_id).includes("transfers")).one()

    @route("GET", "/plain/accounts")
    async def plain_accounts():  # type: ignore[no-untyped-def]
        # No response model: FastAPI's jsonable_encoder renders the records.
        return await io(Account.find().order_by("owner")).all()

    @route("GET", "/plain/accounts/{account_id}")
    async def plain_account(account_id: int):  # type: ignore[no-untyped-def]
        return await account_or_404(account_id)

    return app


@pytest.fixture
async def client(db: IO) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(db))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        yield client


def no_internal_state(text: str) -> bool:
    return "_ar_" not in text


async def test_records_as_response_models_and_request_bodies(db: IO, client: httpx.AsyncClient) -> None:
    made = await client.post("/accounts", json={"owner": "ada", "email": "ada@example.com"})
    assert made.status_code == 201, made.text
    ada = made.json()
    assert set(ada) == {"id", "owner", "email", "created_at"}
    assert isinstance(ada["id"], str) and int(ada["id"]) > 2**53  # exact for JavaScript clients
    stored = await db(Account.find_by_id(int(ada["id"]))).one()
    assert ada == stored.to_dict()

    await client.post("/accounts", json={"owner": "bob"})
    listed = await client.get("/accounts")
    assert [a["owner"] for a in listed.json()] == ["ada", "bob"]
    assert listed.json()[0] == ada
    plain = await client.get("/plain/accounts")
    assert plain.json() == listed.json()
    assert (await client.get(f"/accounts/{ada['id']}")).json() == ada
    assert (await client.get(f"/plain/accounts/{ada['id']}")).json() == ada
    assert (await client.get("/accounts/1")).status_code == 404

    changed = await client.patch(f"/accounts/{ada['id']}", json={"email": None})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**ada, "email": None}
    assert (await db(Account.find_by_id(int(ada["id"]))).one()).email is None

    for amount in ("12.50", "7"):
        sent = await client.post(f"/accounts/{ada['id']}/transfers", json={"amount": amount, "memo": "rent"})
        assert sent.status_code == 201, sent.text
        assert sent.json()["account_id"] == ada["id"]
    statement = (await client.get(f"/accounts/{ada['id']}/statement")).json()
    assert [t["amount"] for t in statement["transfers"]] == ["12.50", "7.00"]
    assert statement["transfers"][0]["id"] == str(int(statement["transfers"][0]["id"]))
    for response in (made, listed, plain, changed, sent):
        assert no_internal_state(response.text)


async def test_bad_input_is_a_422_naming_the_field(db: IO, client: httpx.AsyncClient) -> None:
    too_long = await client.post("/accounts", json={"owner": "x" * 41})
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["body", "owner"]
    bad_email = await client.post("/accounts", json={"owner": "ada", "email": "nobody"})
    assert bad_email.status_code == 422
    assert bad_email.json()["detail"][0]["ctx"]["errors"] == {"email": ["must contain @"]}
    unknown = await client.post("/accounts", json={"owner": "ada", "admin": True})
    assert unknown.status_code == 422
    naive = await client.post("/accounts", json={"owner": "ada", "created_at": "2024-01-01T00:00:00"})
    assert naive.status_code == 422
    account = (await client.post("/accounts", json={"owner": "ada"})).json()
    too_precise = await client.post(f"/accounts/{account['id']}/transfers", json={"amount": "1.234"})
    assert too_precise.status_code == 422
    assert await db(Account.find()).count() == 1


async def test_the_openapi_document_describes_the_records(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    account = schemas["Account"]
    assert account["properties"]["id"]["type"] == "string"
    assert set(account["required"]) == {"id", "owner", "email", "created_at"}
    assert schemas["AccountInput"]["required"] == ["owner"]
    assert schemas["AccountUpdate"]["properties"].keys() == {"owner", "email"}
    assert schemas["AccountWithTransfers"]["properties"]["transfers"]["items"] == {
        "$ref": "#/components/schemas/Transfer"
    }


@pytest.mark.backends("sqlite")
async def test_served_by_uvicorn(db: IO) -> None:
    server = uvicorn.Server(uvicorn.Config(make_app(db), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            made = await client.post("/accounts", json={"owner": "ada"})
            assert made.status_code == 201, made.text
            listed = await client.get("/accounts")
            assert listed.json() == [made.json()]
            assert no_internal_state(listed.text)
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)
