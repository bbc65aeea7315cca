"""TCP states and header flags by name (bcc's ``bcc.tcp``), as the kernel numbers them."""

from __future__ import annotations

__all__ = [
    "TCPHDR_ACK",
    "TCPHDR_CWR",
    "TCPHDR_ECE",
    "TCPHDR_FIN",
    "TCPHDR_PSH",
    "TCPHDR_RST",
    "TCPHDR_SYN",
    "TCPHDR_URG",
    "flags2str",
    "tcpstate",
]

# include/net/tcp_states.h
tcpstate: dict[int, str] = dict(
    enumerate(
        [
            "ESTABLISHED",
            "SYN_SENT",
            "SYN_RECV",
            "FIN_WAIT1",
            "FIN_WAIT2",
            "TIME_WAIT",
            "CLOSE",
            "CLOSE_WAIT",
            "LAST_ACK",
            "LISTEN",
            "CLOSING",
            "NEW_SYN_RECV",
        ],
        start=1,
    )
)

# TCP header flag bits, lowest first
_FLAG_NAMES = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"]
TCPHDR_FIN, TCPHDR_SYN, TCPHDR_RST, TCPHDR_PSH, TCPHDR_ACK, TCPHDR_URG, TCPHDR_ECE, TCPHDR_CWR = (
    1 << i for i in range(8)
)


def flags2str(flags: int) -> str:
    """``SYN|ACK`` for the flag bits set in ``flags``."""
    return "|".join(name for bit, name in enumerate(_FLAG_NAMES) if flags & (1 << bit))
