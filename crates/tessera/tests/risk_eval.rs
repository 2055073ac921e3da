//! Identity Protection's evaluation harness (issue 17, part 4).
//!
//! A population of users with home cities, offices and home networks,
//! browsers, working hours, mistyped passwords, VPNs and trips signs in over
//! simulated weeks through the real sign-in pages of an in-process server
//! (the real router on a socket), each request's client address given by a
//! trusted proxy's `X-Forwarded-For`. Attacks are injected once baselines
//! have learnt: password sprays (several leaked passwords per account, from
//! one network, then the right one), brute force (wrong passwords, then the
//! right one), travel faster than a plane, sign-ins through Tor, and a
//! session cookie stolen minutes after the victim signed in and replayed from
//! another network (with the attacker's browser, or with the victim's copied
//! `User-Agent`); some people also come back to their own session later from
//! another network, which is no attack. The
//! addresses are placed by a City database the harness writes (read by the
//! same MaxMind reader as the operator's) and the anonymizers come from list
//! files (read by the same adapter as the operator's).
//!
//! Each completed sign-in is labelled with what it should be found to be, and
//! compared with the detections recorded for it (by its correlation id).
//! Precision and recall per detection are printed; the aims (at least 0.9
//! for spray, brute force, impossible travel and anonymous IP) are asserted.
//!
//! CI runs a small population. The full run, for `BENCHMARKS.md`:
//! `RISK_EVAL_USERS=1000 RISK_EVAL_DAYS=28 cargo test --release -p tessera
//! --test risk_eval -- --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::json;
use tessera::adapters::geoip::{MmdbPlaces, TestPlace, write_test_city_database};
use tessera::adapters::ip_lists::FileLists;
use tessera_core::SecretString;
use tessera_service::{App, Replacement};
use tessera_testkit::{Backend, ShiftedClock, auth_settings, bootstrap_admin};

use common::pages::{Jar, csrf_of};

/// Cities: country, name, latitude, longitude.
const CITIES: [(&str, &str, f64, f64); 10] = [
    ("FR", "Paris", 48.86, 2.35),
    ("DE", "Berlin", 52.52, 13.40),
    ("GB", "London", 51.51, -0.13),
    ("US", "New York", 40.71, -74.01),
    ("US", "Chicago", 41.88, -87.63),
    ("JP", "Tokyo", 35.68, 139.69),
    ("AU", "Sydney", -33.87, 151.21),
    ("BR", "Sao Paulo", -23.55, -46.63),
    ("IN", "Mumbai", 19.08, 72.88),
    ("ZA", "Johannesburg", -26.20, 28.05),
];

/// Browsers people use (each user keeps one).
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
];
/// What attackers' tools say they are.
const ATTACKER_AGENT: &str = "python-requests/2.32.3";

/// The detections the harness scores, and whether the issue sets an aim.
const SCORED: [(&str, bool); 7] = [
    ("passwordSpray", true),
    ("bruteForce", true),
    ("impossibleTravel", true),
    ("anonymizedIPAddress", true),
    ("anomalousToken", true),
    ("unfamiliarFeatures", false),
    ("maliciousIPAddress", false),
];

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Addresses: city `c`'s office `10.c.1.0/24`, home broadband `10.c.2.0/24`,
/// hotels `10.c.3.0/24`; attackers `10.200.k.0/24` (in city `k % 10`);
/// Tor exits `10.250.0.0/24`, a commercial VPN `10.251.0.0/24` (listed as
/// anonymizers and placed nowhere, as such ranges often are).
fn office(city: usize, host: u64) -> String {
    format!("10.{city}.1.{}", 1 + host % 250)
}
fn home(city: usize, host: u64) -> String {
    format!("10.{city}.2.{}", 1 + host % 250)
}
fn hotel(city: usize, host: u64) -> String {
    format!("10.{city}.3.{}", 1 + host % 250)
}

fn distance_km(a: usize, b: usize) -> f64 {
    let (_, _, lat1, lon1) = CITIES[a];
    let (_, _, lat2, lon2) = CITIES[b];
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// One ceremony after another, at one moment: the passwords tried in order
/// (each a sign-in of its own), the last expected to succeed when `label`
/// says what it should be found to be (empty: nothing).
#[derive(Clone)]
struct Attempt {
    user: usize,
    address: String,
    agent: &'static str,
    passwords: Vec<String>,
    /// Names tried before (a spray's other accounts), failing.
    decoys: Vec<String>,
    expected: BTreeSet<&'static str>,
    /// Detections that may or may not be found (the user's own sign-in
    /// right after an attacker's is the other half of a real impossible
    /// travel).
    either: BTreeSet<&'static str>,
    attack: Option<&'static str>,
    /// Keep the session this sign-in makes, under this key.
    keep_session: Option<u64>,
    /// No sign-in: the session kept under this key, used again (a page of
    /// My Account) from this attempt's address and browser.
    replay: Option<u64>,
}

impl Attempt {
    fn own(user: usize, address: String, passwords: Vec<String>) -> Attempt {
        Attempt {
            user,
            address,
            agent: AGENTS[user % AGENTS.len()],
            passwords,
            decoys: Vec::new(),
            expected: BTreeSet::new(),
            either: BTreeSet::new(),
            attack: None,
            keep_session: None,
            replay: None,
        }
    }
}

fn upn(user: usize) -> String {
    format!("user{user}@contoso.com")
}

fn password_of(user: usize) -> String {
    format!("violet-harbour-{user}-engine")
}

/// The population's sign-ins and the attacks, by simulated second.
fn scenario(users: usize, days: u64, seed: u64) -> BTreeMap<u64, Vec<Attempt>> {
    let mut rng = Rng(seed);
    let mut events: BTreeMap<u64, Vec<Attempt>> = BTreeMap::new();
    let day = 86_400;
    let vpn_users: BTreeSet<usize> = (0..users).filter(|u| u % 20 == 7).collect();
    // Trips: a few users spend two days in a far city, arriving the day after.
    let mut trips: BTreeMap<usize, (u64, usize)> = BTreeMap::new();
    for user in (0..users).filter(|u| u % 25 == 3) {
        let start = 5 + rng.below(days.saturating_sub(7).max(1));
        let city = user % CITIES.len();
        // Not so far that the flight home the day after would be faster
        // than a plane.
        let far = (1..CITIES.len())
            .map(|step| (city + step + rng.below(3) as usize) % CITIES.len())
            .find(|c| {
                *c != city && distance_km(city, *c) > 1500.0 && distance_km(city, *c) < 12_000.0
            })
            .unwrap_or((city + 1) % CITIES.len());
        trips.insert(user, (start, far));
    }
    let attack_from = days * 2 / 3;
    let legit = |events: &mut BTreeMap<u64, Vec<Attempt>>, rng: &mut Rng| {
        for d in 0..days {
            if d % 7 >= 5 {
                continue; // the weekend
            }
            for user in 0..users {
                let city = user % CITIES.len();
                // Working hours, local: 8:00 to 18:00.
                let offset = (-CITIES[city].3 / 15.0 * 3600.0) as i64;
                let sign_ins = 1 + rng.below(2);
                let trip = trips
                    .get(&user)
                    .filter(|(start, _)| d == *start || d == *start + 1)
                    .map(|(start, far)| (*start, *far));
                for _ in 0..sign_ins {
                    // On a trip (by home time): the first day from the
                    // evening on (a day's flight), the second in the morning
                    // only (the flight home).
                    let local = match trip {
                        Some((start, _)) if d == start => 20 * 3600 + rng.below(8 * 3600) as i64,
                        Some(_) => 8 * 3600 + rng.below(4 * 3600) as i64,
                        None => 8 * 3600 + rng.below(10 * 3600) as i64,
                    };
                    let at = (d as i64 * day as i64 + local + offset + day as i64) as u64;
                    let trip = trip.map(|(_, far)| far);
                    let mut expected = BTreeSet::new();
                    let address = match trip {
                        Some(far) => hotel(far, user as u64),
                        None if vpn_users.contains(&user) && rng.chance(30) => {
                            expected.insert("anonymizedIPAddress");
                            format!("10.251.0.{}", 1 + rng.below(250))
                        }
                        None if rng.chance(10) => home(city, user as u64),
                        None => office(city, rng.below(250)),
                    };
                    let mut passwords = Vec::new();
                    if rng.chance(5) {
                        passwords.push(format!("{}x", password_of(user)));
                    }
                    passwords.push(password_of(user));
                    let mut own = Attempt::own(user, address, passwords);
                    own.expected = expected;
                    // Some come back to this session from home later (a
                    // move, not a theft).
                    if trip.is_none() && !vpn_users.contains(&user) && rng.chance(8) {
                        let key = at * 1000 + user as u64;
                        own.keep_session = Some(key);
                        let mut back = Attempt::own(user, home(city, user as u64), Vec::new());
                        back.replay = Some(key);
                        events
                            .entry(at + 1200 + rng.below(1200))
                            .or_default()
                            .push(back);
                    }
                    events.entry(at).or_default().push(own);
                }
            }
        }
    };
    legit(&mut events, &mut rng);
    // Attacks, on weekdays after the baselines learnt, each against a user
    // who takes no trip and uses no VPN, right after one of their sign-ins.
    let victims: Vec<usize> = (0..users)
        .filter(|u| !trips.contains_key(u) && !vpn_users.contains(u))
        .collect();
    // Each victim is attacked once (two attacks on one account would make
    // each the other's evidence).
    let per_kind = (users / 10).max(6);
    assert!(
        victims.len() >= 6 * per_kind,
        "a population of {users} has too few users to attack each once"
    );
    let mut shuffled = victims.clone();
    for i in (1..shuffled.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        shuffled.swap(i, j);
    }
    let mut next_victim = 0;
    let mut pick = |_: &mut Rng| {
        // Past the end (stolen sessions try more victims): from the start again.
        let victim = shuffled[next_victim % shuffled.len()];
        next_victim += 1;
        victim
    };
    let last_sign_in = |events: &BTreeMap<u64, Vec<Attempt>>, user: usize, d: u64| {
        events
            .iter()
            .filter(|(at, _)| **at / day == d + 1)
            .filter(|(_, list)| {
                list.iter()
                    .any(|a| a.user == user && a.attack.is_none() && a.replay.is_none())
            })
            .map(|(at, _)| *at)
            .max()
    };
    let mut attacks: Vec<(u64, Attempt)> = Vec::new();
    for kind in ["anonymizer", "travel", "bruteForce", "spray"] {
        for n in 0..per_kind {
            let victim = pick(&mut rng);
            let city = victim % CITIES.len();
            // A weekday in the attack window the victim signed in on.
            let mut d = attack_from + rng.below(days - attack_from);
            while d % 7 >= 5 {
                d = attack_from + rng.below(days - attack_from);
            }
            let Some(after) = last_sign_in(&events, victim, d) else {
                continue;
            };
            let at = after + 600 + rng.below(1200);
            let mut attempt = Attempt {
                user: victim,
                address: String::new(),
                agent: ATTACKER_AGENT,
                passwords: vec![password_of(victim)],
                decoys: Vec::new(),
                expected: BTreeSet::new(),
                either: BTreeSet::new(),
                attack: Some(kind),
                keep_session: None,
                replay: None,
            };
            match kind {
                "anonymizer" => {
                    attempt.address = format!("10.250.0.{}", 1 + rng.below(250));
                    attempt.expected.insert("anonymizedIPAddress");
                }
                "travel" => {
                    // From a city 5,000 to 10,000 km away, within the half hour.
                    let far = (0..CITIES.len())
                        .filter(|c| (5000.0..10_000.0).contains(&distance_km(city, *c)))
                        .nth(rng.below(3) as usize % 2)
                        .unwrap_or((city + 5) % CITIES.len());
                    attempt.address = format!("10.{}.{}.9", 210 + far, 100 + n % 100);
                    attempt.expected.insert("impossibleTravel");
                }
                "bruteForce" => {
                    let k = 100 + n;
                    attempt.address = format!("10.200.{k}.{}", 1 + rng.below(250));
                    let mut passwords: Vec<String> =
                        (0..6).map(|i| format!("Summer202{i}!")).collect();
                    passwords.push(password_of(victim));
                    attempt.passwords = passwords;
                    attempt.expected.insert("bruteForce");
                }
                _ => {
                    // Ten other names (some nobody's) with leaked passwords
                    // that no longer work, the victim's old one, then its
                    // current one.
                    attempt.address = format!("10.200.{}.{}", n % 90, 1 + rng.below(250));
                    attempt.decoys = (0..10)
                        .map(|i| {
                            if i % 3 == 0 {
                                format!("former{n}x{i}@contoso.com")
                            } else {
                                upn((victim + 1 + i * 13) % users)
                            }
                        })
                        .collect();
                    attempt.passwords = vec!["Spring2024!".to_string(), password_of(victim)];
                    attempt.expected.insert("passwordSpray");
                }
            }
            // Every attacker's sign-in is also unlike the victim's own, and
            // one from a placed network minutes after the victim's own from
            // another city is impossible travel too.
            attempt.either.insert("unfamiliarFeatures");
            attempt.either.insert("impossibleTravel");
            attacks.push((at, attempt));
        }
    }
    // Stolen sessions: the victim's cookie, taken right after their sign-in
    // and replayed within minutes from another network, half of them with
    // the victim's own User-Agent copied.
    let mut n = 0;
    for _ in 0..per_kind * 4 {
        if n == per_kind {
            break;
        }
        let victim = pick(&mut rng);
        let mut d = attack_from + rng.below(days - attack_from);
        while d % 7 >= 5 {
            d = attack_from + rng.below(days - attack_from);
        }
        let Some(after) = last_sign_in(&events, victim, d) else {
            continue;
        };
        let key = after * 1000 + victim as u64;
        let Some(own) = events.get_mut(&after).and_then(|list| {
            list.iter_mut()
                .find(|a| a.user == victim && a.attack.is_none() && a.replay.is_none())
        }) else {
            continue;
        };
        if own.keep_session.is_some() {
            continue;
        }
        own.keep_session = Some(key);
        let own_address = own.address.clone();
        let mut replay = Attempt::own(
            victim,
            format!("10.252.{}.{}", n % 250, 1 + rng.below(250)),
            Vec::new(),
        );
        replay.attack = Some("sessionReplay");
        replay.replay = Some(key);
        let at = after + 60 + rng.below(120);
        if n % 2 == 0 {
            // Another browser: found at the thief's request.
            replay.agent = ATTACKER_AGENT;
            replay.expected.insert("anomalousToken");
        } else {
            // The victim's own browser copied: the thief's use looks like a
            // move; the victim's next use, back on their network moments
            // later, shows two places using it.
            let mut victim_again = Attempt::own(victim, own_address.clone(), Vec::new());
            victim_again.attack = Some("sessionReplay");
            victim_again.replay = Some(key);
            victim_again.expected.insert("anomalousToken");
            attacks.push((at + 30 + rng.below(60), victim_again));
        }
        attacks.push((at, replay));
        n += 1;
    }
    // Near the thresholds, and harmless: a user who fumbles their password
    // three times, and a morning when eight people at one office mistype
    // theirs within minutes (a spray needs ten names).
    for n in 0..per_kind {
        let user = pick(&mut rng);
        let city = user % CITIES.len();
        let d = attack_from + rng.below(days - attack_from);
        let at = (d + 1) * day + 10 * 3600 + rng.below(3600);
        events.entry(at).or_default().push(Attempt::own(
            user,
            office(city, rng.below(250)),
            vec![
                format!("{}1", password_of(user)),
                format!("{}2", password_of(user)),
                format!("{}3", password_of(user)),
                password_of(user),
            ],
        ));
        let city = n % CITIES.len();
        let start = (d + 1) * day + 9 * 3600;
        for (i, colleague) in (0..users)
            .filter(|u| {
                u % CITIES.len() == city && !trips.contains_key(u) && !vpn_users.contains(u)
            })
            .take(8)
            .enumerate()
        {
            events
                .entry(start + i as u64 * 30)
                .or_default()
                .push(Attempt::own(
                    colleague,
                    office(city, 7),
                    vec![
                        format!("{}x", password_of(colleague)),
                        password_of(colleague),
                    ],
                ));
        }
    }
    // The victim's next own sign-in follows an attacker's from elsewhere.
    for (at, attack) in &attacks {
        if let Some((_, list)) = events.range_mut(at + 1..).find(|(_, list)| {
            list.iter()
                .any(|a| a.user == attack.user && a.attack.is_none())
        }) {
            for own in list.iter_mut().filter(|a| a.user == attack.user) {
                own.either.insert("impossibleTravel");
                own.either.insert("unfamiliarFeatures");
            }
        }
    }
    for (at, attack) in attacks {
        events.entry(at).or_default().push(attack);
    }
    events
}

/// A browser of one ceremony: every request names the client address (as
/// the proxy saw it), the browser, and the ceremony's correlation id.
struct Ceremony<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    address: &'a str,
    agent: &'a str,
    correlation: String,
}

impl Ceremony<'_> {
    fn request(&self, request: reqwest::RequestBuilder, jar: &Jar) -> reqwest::RequestBuilder {
        request
            .header("x-forwarded-for", self.address)
            .header("user-agent", self.agent)
            .header("x-request-id", &self.correlation)
            .header("cookie", jar.header())
    }

    /// A session used again: whether its page answered.
    async fn use_session(&self, jar: &Jar) -> bool {
        let page = self
            .request(self.http.get(format!("{}/security-info", self.base)), jar)
            .send()
            .await
            .unwrap();
        page.status() == 200
    }

    /// One sign-in with one password: whether it signed the user in, and the
    /// browser's cookies after.
    async fn sign_in(&self, name: &str, password: &str) -> (bool, Jar) {
        let mut jar = Jar::default();
        let page = self
            .request(self.http.get(format!("{}/signin", self.base)), &jar)
            .send()
            .await
            .unwrap();
        jar.take(&page);
        let csrf = csrf_of(&page.text().await.unwrap());
        for (path, fields) in [
            (
                "/signin/name",
                vec![("csrf", csrf.as_str()), ("username", name)],
            ),
            (
                "/signin/password",
                vec![("csrf", csrf.as_str()), ("secret", password)],
            ),
        ] {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            let response = self
                .request(self.http.post(format!("{}{path}", self.base)), &jar)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            jar.take(&response);
            if path == "/signin/password" {
                return (response.status() == 303, jar);
            }
            assert_eq!(response.status(), 200, "{path}");
        }
        (false, jar)
    }
}

#[derive(Default)]
struct Score {
    true_positive: u32,
    false_positive: u32,
    false_negative: u32,
}

impl Score {
    fn precision(&self) -> f64 {
        let found = self.true_positive + self.false_positive;
        if found == 0 {
            1.0
        } else {
            f64::from(self.true_positive) / f64::from(found)
        }
    }
    fn recall(&self) -> f64 {
        let due = self.true_positive + self.false_negative;
        if due == 0 {
            1.0
        } else {
            f64::from(self.true_positive) / f64::from(due)
        }
    }
}

#[test]
fn detections_are_precise_and_complete_on_a_simulated_population() {
    let users: usize = std::env::var("RISK_EVAL_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let days: u64 = std::env::var("RISK_EVAL_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(evaluate(users, days));
}

async fn evaluate(users: usize, days: u64) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let work = tempfile::tempdir().unwrap();
    // The operator's files: a City database (that also gives ASNs) and the
    // anonymizer list.
    let mut places = Vec::new();
    let names: Vec<String> = (0..CITIES.len())
        .flat_map(|c| {
            [
                format!("10.{c}.1.0/24"),
                format!("10.{c}.2.0/24"),
                format!("10.{c}.3.0/24"),
            ]
        })
        .chain((0..=255).map(|k| format!("10.200.{k}.0/24")))
        .chain((0..10).flat_map(|c| (100..200).map(move |k| format!("10.{}.{k}.0/24", 210 + c))))
        .collect();
    for network in &names {
        let octets: Vec<u32> = network
            .trim_end_matches(".0/24")
            .split('.')
            .map(|o| o.parse().unwrap())
            .collect();
        let (city, asn) = match (octets[1], octets[2]) {
            (c @ 0..=9, kind) => (c as usize, 64_500 + c * 10 + kind),
            (200, k) => ((k % 10) as usize, 65_000 + k),
            (b, k) => ((b - 210) as usize, 66_000 + k),
        };
        let (country, name, latitude, longitude) = CITIES[city];
        places.push((
            network.as_str(),
            TestPlace {
                country,
                city: name,
                latitude,
                longitude,
                accuracy_km: 20,
                asn,
            },
        ));
    }
    let city_db = work.path().join("city.mmdb");
    std::fs::write(&city_db, write_test_city_database(&places)).unwrap();
    let anonymous = work.path().join("anonymous.txt");
    std::fs::write(
        &anonymous,
        "# Tor exits and a commercial VPN\n10.250.0.0/24 tor\n10.251.0.0/24 vpn\n",
    )
    .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let clock = Arc::new(ShiftedClock::default());
    let app = Arc::new(App::with_auth(
        Backend::Sqlite.store().await,
        clock.clone(),
        auth_settings(&base),
    ));
    app.risk.set_geo(Arc::new(
        MmdbPlaces::open(&city_db, Some(&city_db)).unwrap(),
    ));
    app.risk
        .set_ip_lists(Arc::new(FileLists::open(Some(&anonymous), None).unwrap()));
    let admin = bootstrap_admin(&app).await.ctx;
    app.access
        .set_security_defaults(
            &admin,
            Replacement {
                body: json!({ "isEnabled": false }),
                if_match: None,
            },
        )
        .await
        .unwrap();
    let mut ids = Vec::with_capacity(users);
    for user in 0..users {
        let id = app
            .directory
            .create_user(
                &admin,
                json!({ "userPrincipalName": upn(user), "displayName": format!("User {user}") }),
            )
            .await
            .unwrap()
            .id;
        app.sign_in
            .reset_password(&admin, id, Some(SecretString::new(password_of(user))))
            .await
            .unwrap();
        ids.push(id);
    }
    let state = tessera_server::state::AppState {
        app: app.clone(),
        metrics: None,
        certificate_proxy: None,
        trusted_proxies: Arc::new(vec!["127.0.0.1".parse().unwrap()]),
    };
    let router = tessera_server::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });

    let started = std::time::Instant::now();
    let events = scenario(users, days, 0x5eed_1234);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut simulated = 0u64;
    let mut outcomes: Vec<(String, Attempt)> = Vec::new();
    let mut ceremony = 0u64;
    let mut failed_own = 0u32;
    let mut missed_attacks: Vec<Attempt> = Vec::new();
    let sessions: Arc<tokio::sync::Mutex<BTreeMap<u64, Jar>>> = Arc::default();
    for (at, attempts) in events {
        clock.advance_seconds((at - simulated) as i64);
        simulated = at;
        let mut running = Vec::new();
        for attempt in attempts {
            ceremony += 1;
            let correlation = format!("eval-{ceremony}");
            let http = http.clone();
            let base = base.clone();
            let sessions = sessions.clone();
            running.push(tokio::spawn(async move {
                let steps = Ceremony {
                    http: &http,
                    base: &base,
                    address: &attempt.address,
                    agent: attempt.agent,
                    correlation: correlation.clone(),
                };
                if let Some(key) = attempt.replay {
                    let jar = sessions.lock().await.get(&key).cloned();
                    let used = match jar {
                        // A stolen cookie counts as used whatever the page
                        // answers (a copy in another browser ends the
                        // session); the owner's own use must work.
                        Some(jar) => steps.use_session(&jar).await || attempt.attack.is_some(),
                        None => false,
                    };
                    return (correlation, attempt, used);
                }
                for decoy in &attempt.decoys {
                    assert!(!steps.sign_in(decoy, "Spring2024!").await.0);
                }
                let mut signed_in = false;
                for password in &attempt.passwords {
                    let (done, jar) = steps.sign_in(&upn(attempt.user), password).await;
                    signed_in = done;
                    if done && let Some(key) = attempt.keep_session {
                        sessions.lock().await.insert(key, jar);
                    }
                }
                (correlation, attempt, signed_in)
            }));
        }

        for task in running {
            let (correlation, attempt, signed_in) = task.await.unwrap();
            if signed_in {
                outcomes.push((correlation, attempt));
            } else if attempt.attack.is_none() {
                failed_own += 1;
            } else {
                // An attack that did not get in is missed by every detection
                // it should have raised.
                missed_attacks.push(attempt);
            }
        }
    }
    // What was found, by ceremony.
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut cursor = None;
    loop {
        let page = app
            .risk
            .list_detections(
                &admin,
                &tessera_service::risk::DetectionFilter {
                    limit: Some(1000),
                    cursor,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for detection in &page.value {
            found
                .entry(detection.correlation_id.clone())
                .or_default()
                .insert(detection.risk_event_type.clone());
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let mut scores: BTreeMap<&str, Score> = BTreeMap::new();
    for (correlation, attempt) in &outcomes {
        let seen = found.get(correlation).cloned().unwrap_or_default();
        for (kind, _) in SCORED {
            let score = scores.entry(kind).or_default();
            let due = attempt.expected.contains(kind);
            let hit = seen.contains(kind);
            let verbose = std::env::var("RISK_EVAL_VERBOSE").is_ok();
            match (due, hit) {
                (true, true) => score.true_positive += 1,
                (true, false) => {
                    if verbose {
                        eprintln!(
                            "missed {kind}: {correlation} user{} from {} ({:?}), found {seen:?}",
                            attempt.user, attempt.address, attempt.attack
                        );
                    }
                    score.false_negative += 1;
                }
                (false, true) if !attempt.either.contains(kind) => {
                    if verbose {
                        eprintln!(
                            "false {kind}: {correlation} user{} from {} ({:?})",
                            attempt.user, attempt.address, attempt.attack
                        );
                    }
                    score.false_positive += 1;
                }
                _ => {}
            }
        }
    }
    for attempt in &missed_attacks {
        for kind in &attempt.expected {
            if let Some(score) = scores.get_mut(kind) {
                score.false_negative += 1;
            }
        }
    }
    let attacks = outcomes.iter().filter(|(_, a)| a.attack.is_some()).count();
    println!(
        "\nIdentity Protection evaluation: {users} users, {days} days, {} sign-ins completed ({attacks} by attackers), {failed_own} own sign-ins not completed, in {:.0?}",
        outcomes.len(),
        started.elapsed()
    );
    println!(
        "{:<22} {:>5} {:>5} {:>5} {:>9} {:>7}",
        "detection", "TP", "FP", "FN", "precision", "recall"
    );
    for (kind, aimed) in SCORED {
        let score = &scores[kind];
        println!(
            "{kind:<22} {:>5} {:>5} {:>5} {:>9.3} {:>7.3}{}",
            score.true_positive,
            score.false_positive,
            score.false_negative,
            score.precision(),
            score.recall(),
            if aimed {
                ""
            } else {
                "  (no attack labelled: informational)"
            }
        );
    }
    assert_eq!(failed_own, 0, "every own sign-in completes");
    for (kind, aimed) in SCORED {
        let score = &scores[kind];
        if aimed {
            assert!(
                score.true_positive + score.false_negative >= 5,
                "{kind}: too few attacks to judge"
            );
            assert!(
                score.precision() >= 0.9 && score.recall() >= 0.9,
                "{kind}: precision {:.3}, recall {:.3}",
                score.precision(),
                score.recall()
            );
        }
    }
    server.abort();
}
