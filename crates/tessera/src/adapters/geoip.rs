//! Countries for Conditional Access named locations, from a MaxMind-format (MMDB)
//! database the operator supplies (`geoip_database`): GeoLite2/GeoIP2 Country or
//! City, or any database with `country.iso_code`. Read into memory at start; a
//! lookup is a tree walk, no I/O.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{PathElement, Reader};
use tessera_service::conditional_access::CountryLookup;

pub struct MmdbCountries {
    reader: Reader<Vec<u8>>,
}

impl MmdbCountries {
    pub fn open(path: &Path) -> Result<MmdbCountries, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the country database {}: {e}", path.display()))?;
        MmdbCountries::from_bytes(bytes)
            .map_err(|e| format!("{} is not a MaxMind database: {e}", path.display()))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<MmdbCountries, String> {
        let reader = Reader::from_source(bytes).map_err(|e| e.to_string())?;
        Ok(MmdbCountries { reader })
    }
}

impl CountryLookup for MmdbCountries {
    fn country(&self, ip: IpAddr) -> Option<[u8; 2]> {
        let found = self.reader.lookup(ip).ok()?;
        let code: String = found
            .decode_path(&[PathElement::Key("country"), PathElement::Key("iso_code")])
            .ok()??;
        tessera_ca::engine::parse_country(&code)
    }
}

/// Places for Identity Protection (impossible travel, unfamiliar sign-in
/// properties), from the same City database and, when the operator gives
/// one, an ASN database (`geoip_asn_database`, e.g. GeoLite2-ASN).
pub struct MmdbPlaces {
    city: Reader<Vec<u8>>,
    asn: Option<Reader<Vec<u8>>>,
}

impl MmdbPlaces {
    pub fn open(city: &Path, asn: Option<&Path>) -> Result<MmdbPlaces, String> {
        let read = |path: &Path, what: &str| {
            let bytes = std::fs::read(path)
                .map_err(|e| format!("cannot read the {what} database {}: {e}", path.display()))?;
            Reader::from_source(bytes)
                .map_err(|e| format!("{} is not a MaxMind database: {e}", path.display()))
        };
        Ok(MmdbPlaces {
            city: read(city, "city")?,
            asn: asn.map(|path| read(path, "ASN")).transpose()?,
        })
    }
}

/// The parts of a City record Identity Protection reads (decoded at once).
#[derive(serde::Deserialize, Default)]
struct CityRecord<'a> {
    #[serde(borrow, default)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    city: Option<CityNames<'a>>,
    #[serde(default)]
    location: Option<Location>,
}

#[derive(serde::Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct CityNames<'a> {
    #[serde(borrow, default)]
    names: Option<std::collections::BTreeMap<&'a str, &'a str>>,
}

#[derive(serde::Deserialize)]
struct Location {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    accuracy_radius: Option<u16>,
}

#[derive(serde::Deserialize)]
struct AsnRecord {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
}

impl tessera_service::risk::GeoLookup for MmdbPlaces {
    fn locate(&self, ip: IpAddr) -> Option<tessera_service::risk::GeoInfo> {
        let found = self.city.lookup(ip).ok()?;
        let record: CityRecord = found.decode().ok().flatten().unwrap_or_default();
        let location = record.location.as_ref();
        let info = tessera_service::risk::GeoInfo {
            country: record
                .country
                .and_then(|c| c.iso_code)
                .filter(|c| c.len() == 2)
                .map(str::to_string),
            city: record
                .city
                .and_then(|c| c.names)
                .and_then(|names| names.get("en").map(|n| n.chars().take(64).collect())),
            latitude: location.and_then(|l| l.latitude).filter(|v| v.is_finite()),
            longitude: location.and_then(|l| l.longitude).filter(|v| v.is_finite()),
            accuracy_km: location.and_then(|l| l.accuracy_radius).map(f64::from),
            asn: self.asn.as_ref().and_then(|asn| {
                asn.lookup(ip)
                    .ok()?
                    .decode::<AsnRecord>()
                    .ok()
                    .flatten()?
                    .autonomous_system_number
            }),
        };
        (info != tessera_service::risk::GeoInfo::default()).then_some(info)
    }
}

/// Writes a small IPv4 country database (for tests: a real MMDB, read by the same
/// reader as the operator's): each network with its ISO country code.
#[doc(hidden)]
pub fn write_test_database(networks: &[(&str, &str)]) -> Vec<u8> {
    let records: Vec<(&str, Vec<u8>)> = networks
        .iter()
        .map(|(network, country)| {
            (
                *network,
                test_map(&[("country", test_map(&[("iso_code", test_string(country))]))]),
            )
        })
        .collect();
    write_test_mmdb(&records)
}

/// A place for [`write_test_city_database`].
#[doc(hidden)]
pub struct TestPlace<'a> {
    pub country: &'a str,
    pub city: &'a str,
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_km: u16,
    pub asn: u32,
}

/// Writes a small IPv4 City database that also holds each network's ASN (a
/// test can give it as both the city and the ASN database).
#[doc(hidden)]
pub fn write_test_city_database(networks: &[(&str, TestPlace)]) -> Vec<u8> {
    let records: Vec<(&str, Vec<u8>)> = networks
        .iter()
        .map(|(network, place)| {
            let mut asn = vec![0xC4];
            asn.extend_from_slice(&place.asn.to_be_bytes());
            let mut radius = vec![0xA2];
            radius.extend_from_slice(&place.accuracy_km.to_be_bytes());
            (
                *network,
                test_map(&[
                    (
                        "country",
                        test_map(&[("iso_code", test_string(place.country))]),
                    ),
                    (
                        "city",
                        test_map(&[("names", test_map(&[("en", test_string(place.city))]))]),
                    ),
                    (
                        "location",
                        test_map(&[
                            ("latitude", test_double(place.latitude)),
                            ("longitude", test_double(place.longitude)),
                            ("accuracy_radius", radius),
                        ]),
                    ),
                    ("autonomous_system_number", asn),
                ]),
            )
        })
        .collect();
    write_test_mmdb(&records)
}

fn test_string(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    push_string(&mut out, text);
    out
}

fn test_double(value: f64) -> Vec<u8> {
    let mut out = vec![0x68];
    out.extend_from_slice(&value.to_be_bytes());
    out
}

fn test_map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0xE0 | entries.len() as u8];
    for (key, value) in entries {
        push_string(&mut out, key);
        out.extend_from_slice(value);
    }
    out
}

/// An IPv4 MMDB of networks with their encoded data records.
fn write_test_mmdb(networks: &[(&str, Vec<u8>)]) -> Vec<u8> {
    const NO_DATA: u32 = u32::MAX;
    // Trie over 32 bits; a record is a node index, `NO_DATA`, or `DATA | n`.
    const DATA: u32 = 1 << 31;
    let mut nodes: Vec<[u32; 2]> = vec![[NO_DATA, NO_DATA]];
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for (network, record) in networks {
        let Ok(net) = network.parse::<ipnet::Ipv4Net>() else {
            continue;
        };
        offsets.push(data.len() as u32);
        data.extend_from_slice(record);
        let bits = u32::from(net.network());
        let mut node = 0usize;
        let len = u32::from(net.prefix_len());
        for depth in 0..len {
            let bit = ((bits >> (31 - depth)) & 1) as usize;
            if depth + 1 == len {
                nodes[node][bit] = DATA | (offsets.len() as u32 - 1);
            } else {
                if nodes[node][bit] == NO_DATA || nodes[node][bit] & DATA != 0 {
                    nodes.push([NO_DATA, NO_DATA]);
                    nodes[node][bit] = nodes.len() as u32 - 1;
                }
                node = nodes[node][bit] as usize;
            }
        }
    }
    let count = nodes.len() as u32;
    let mut out = Vec::new();
    for node in &nodes {
        for record in node {
            let value = if *record == NO_DATA {
                count
            } else if record & DATA != 0 {
                count + 16 + offsets[(record & !DATA) as usize]
            } else {
                *record
            };
            out.extend_from_slice(&value.to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    out.push(0xE0 | 9);
    push_string(&mut out, "binary_format_major_version");
    out.extend_from_slice(&[0xA1, 2]);
    push_string(&mut out, "binary_format_minor_version");
    out.push(0xA0);
    push_string(&mut out, "build_epoch");
    out.extend_from_slice(&[0x01, 0x02, 0x01]);
    push_string(&mut out, "database_type");
    push_string(&mut out, "Tessera-Test-Country");
    push_string(&mut out, "description");
    out.push(0xE1);
    push_string(&mut out, "en");
    push_string(&mut out, "test");
    push_string(&mut out, "ip_version");
    out.extend_from_slice(&[0xA1, 4]);
    push_string(&mut out, "languages");
    out.extend_from_slice(&[0x01, 0x04]);
    push_string(&mut out, "en");
    push_string(&mut out, "node_count");
    out.push(0xC4);
    out.extend_from_slice(&count.to_be_bytes());
    push_string(&mut out, "record_size");
    out.extend_from_slice(&[0xA1, 24]);
    out
}

fn push_string(out: &mut Vec<u8>, text: &str) {
    debug_assert!(text.len() < 29);
    out.push(0x40 | text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_from_a_real_mmdb() {
        let bytes = write_test_database(&[
            ("192.0.2.0/24", "NL"),
            ("198.51.100.0/25", "BE"),
            ("203.0.113.0/24", "US"),
        ]);
        let lookup = MmdbCountries::from_bytes(bytes).unwrap();
        let at = |ip: &str| lookup.country(ip.parse().unwrap());
        assert_eq!(at("192.0.2.77"), Some(*b"NL"));
        assert_eq!(at("198.51.100.5"), Some(*b"BE"));
        assert_eq!(at("198.51.100.200"), None, "outside the /25: unknown");
        assert_eq!(at("203.0.113.1"), Some(*b"US"));
        assert_eq!(at("10.0.0.1"), None);
        assert_eq!(
            at("2001:db8::1"),
            None,
            "an IPv4 database places no IPv6 address"
        );
        assert!(MmdbCountries::from_bytes(b"not a database".to_vec()).is_err());
    }

    #[test]
    fn places_from_a_real_city_mmdb() {
        use tessera_service::risk::GeoLookup;
        let bytes = write_test_city_database(&[(
            "192.0.2.0/24",
            TestPlace {
                country: "FR",
                city: "Paris",
                latitude: 48.86,
                longitude: 2.35,
                accuracy_km: 20,
                asn: 3215,
            },
        )]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        std::fs::write(&path, bytes).unwrap();
        let places = MmdbPlaces::open(&path, Some(&path)).unwrap();
        let found = places.locate("192.0.2.9".parse().unwrap()).unwrap();
        assert_eq!(found.country.as_deref(), Some("FR"));
        assert_eq!(found.city.as_deref(), Some("Paris"));
        assert_eq!(found.latitude, Some(48.86));
        assert_eq!(found.longitude, Some(2.35));
        assert_eq!(found.accuracy_km, Some(20.0));
        assert_eq!(found.asn, Some(3215));
        assert!(places.locate("10.0.0.1".parse().unwrap()).is_none());
        // A country database places countries only.
        let countries = dir.path().join("country.mmdb");
        std::fs::write(&countries, write_test_database(&[("192.0.2.0/24", "NL")])).unwrap();
        let coarse = MmdbPlaces::open(&countries, None).unwrap();
        let found = coarse.locate("192.0.2.9".parse().unwrap()).unwrap();
        assert_eq!(
            (found.country.as_deref(), found.latitude),
            (Some("NL"), None)
        );
    }
}
