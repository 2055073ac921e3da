//! Identity Protection rules (issue 17), pure: no storage, no clock (every
//! function is given `now`), no network. What a sign-in or a user's history says
//! about risk.
//!
//! - [`detection`]: the kinds of detection (Entra's `riskEventType` names where
//!   Entra has one), each with its level, whether it was computed during the
//!   sign-in (real time, so Conditional Access can act on it) or afterwards
//!   (offline), and its evidence.
//! - The detectors, each a function of the facts it needs:
//!   - [`iplist`]: operator lists of anonymizers (Tor exits, VPN and hosting
//!     ranges) and known-malicious addresses, read from text files and looked up;
//!   - [`geo`]: impossible travel between consecutive sign-ins, and unlikely
//!     travel over a longer window (offline);
//!   - [`baseline`]: a user's familiar sign-in properties (country, network,
//!     subnet, device, browser, platform), learnt quietly at first, and the
//!     unfamiliar sign-in;
//!   - [`counters`]: password spray and brute force from counts kept across
//!     nodes (the service keeps them), repeated denied or abandoned MFA prompts;
//!   - [`token`]: a session used from another device or from two networks at
//!     once, a bound token presented without its binding;
//!   - [`device`]: many accounts signing in through one registered device
//!     (offline);
//!   - [`workload`]: a workload's leaked secret, replayed client assertion,
//!     and token requests from a source unlike its own;
//! - [`aggregate`]: a sign-in's risk from its detections, and a user's risk
//!   from their history until it is remediated, dismissed or confirmed.

pub mod aggregate;
pub mod baseline;
pub mod counters;
pub mod detection;
pub mod device;
pub mod geo;
pub mod iplist;
pub mod token;
pub mod workload;

pub use detection::{Detection, EventType, Timing};
pub use tessera_ca::model::RiskLevel;
