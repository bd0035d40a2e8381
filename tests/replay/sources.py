"""Where the real records live (../shared/data, the upstream data folder of the project's workspace,
beside the repository) and the policies replayed."""

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PIERCE = SHARED / "data" / "pierce_county_jail" / "allholds_bookings_with_ice_hold.csv"
DDP = SHARED / "data" / "ddp_ice_schema" / "sample_mn_stcloud_declined_detainers_records.csv"
POLICIES = ["us/ice-request", "ct/trust-act-2013", "ca/trust-act-2013"]
