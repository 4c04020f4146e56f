"""Native API: inbound messages injected into the simulator."""

from __future__ import annotations

from textbridge.api.deps import CallerDep, SessionDep, SettingsDep
from textbridge.api.routing import make_router
from textbridge.channels import InboundSms
from textbridge.kit.clock import utcnow
from textbridge.messages.schemas import InboundMessage, MessageOut
from textbridge.messages.service import messages

router = make_router(prefix="/v1/simulator", tags=["simulator"])


@router.post("/inbound", status_code=201, response_model=MessageOut)
async def inject_inbound(
    body: InboundMessage, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> MessageOut:
    """Pretend a phone sent an SMS to one of the account's numbers; it is stored as received."""
    sms = InboundSms(
        phone=body.from_,
        to=body.to,
        text=body.text,
        received_at=utcnow(),
        account_id=caller.account_id,
    )
    row = await messages.receive(session, sms, settings=settings)
    return MessageOut.of(await messages.get(session, caller, row["id"]))
