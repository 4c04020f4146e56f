"""Native API: phone verifications."""

from __future__ import annotations

from fastapi import Request

from textbridge.api.deps import CallerDep, RuntimeDep, SessionDep, client_ip
from textbridge.api.routing import make_router
from textbridge.verify.schemas import (
    CheckOut,
    CheckVerification,
    CreateVerification,
    VerificationOut,
)
from textbridge.verify.service import StartVerification, verifications

router = make_router(prefix="/v1/verifications", tags=["verifications"])


@router.post("", status_code=201, response_model=VerificationOut)
async def start_verification(
    body: CreateVerification, request: Request, caller: CallerDep, runtime: RuntimeDep
) -> VerificationOut:
    """Send a one-time code to a phone (the same code again while one is pending)."""
    started = await verifications.start(
        caller,
        StartVerification(
            phone=body.phone,
            service=body.service,
            code_length=body.code_length,
            lifetime_seconds=body.lifetime_seconds,
            sender=body.sender,
            template=body.template,
            client_ip=client_ip(request),
        ),
        db=runtime.db,
        settings=runtime.settings,
        channels=runtime.channels,
        writer=runtime.writer,
    )
    return VerificationOut.of(started.verification)


@router.post("/check", response_model=CheckOut)
async def check_verification(
    body: CheckVerification, session: SessionDep, caller: CallerDep, runtime: RuntimeDep
) -> CheckOut:
    """Check a code. Five wrong checks end the verification, even for the right code after."""
    result = await verifications.check(
        session,
        caller,
        code=body.code,
        settings=runtime.settings,
        verification_id=body.verification_id,
        phone=body.phone,
        service=body.service,
    )
    return CheckOut(valid=result.valid, verification=VerificationOut.of(result.verification))


@router.get("/{verification_id}", response_model=VerificationOut)
async def get_verification(
    verification_id: str, session: SessionDep, caller: CallerDep
) -> VerificationOut:
    """A verification's status: pending, approved, expired, max_attempts_reached, canceled."""
    return VerificationOut.of(await verifications.get(session, caller, verification_id))


@router.post("/{verification_id}/cancel", response_model=VerificationOut)
async def cancel_verification(
    verification_id: str, session: SessionDep, caller: CallerDep
) -> VerificationOut:
    """Cancel a pending verification; its code stops working."""
    return VerificationOut.of(await verifications.cancel(session, caller, verification_id))
