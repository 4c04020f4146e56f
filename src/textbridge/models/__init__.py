"""Tables, one module each. Imports only ``kit`` and ``db``."""

from textbridge.models.account import Account
from textbridge.models.api_key import ApiKey
from textbridge.models.bulk_job import BulkJob
from textbridge.models.contact import Contact, ContactGroup, GroupMember
from textbridge.models.conversation import Conversation
from textbridge.models.device import Device, DeviceCredential, DeviceLogin, SimCard
from textbridge.models.event import Event
from textbridge.models.idempotency import IdempotencyRecord
from textbridge.models.ledger import LedgerEntry, LedgerKind
from textbridge.models.message import (
    Direction,
    Message,
    MessageSend,
    MessageStatus,
    MessageType,
)
from textbridge.models.price import DEFAULT_COUNTRY, Price
from textbridge.models.verification import Verification, VerificationStatus
from textbridge.models.webhook import Notice, WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "DEFAULT_COUNTRY",
    "Account",
    "ApiKey",
    "BulkJob",
    "Contact",
    "ContactGroup",
    "Conversation",
    "Device",
    "DeviceCredential",
    "DeviceLogin",
    "Direction",
    "Event",
    "GroupMember",
    "IdempotencyRecord",
    "LedgerEntry",
    "LedgerKind",
    "Message",
    "MessageSend",
    "MessageStatus",
    "MessageType",
    "Notice",
    "Price",
    "SimCard",
    "Verification",
    "VerificationStatus",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
