//! Translation between the cores' [`Msg`] and the wire's [`QuorumPacket`] (quorum-protocol.md
//! §5.1). Bodies the cores do not interpret (REQUEST, REVALIDATE, ping touches, NEWLEADER's
//! config text) are filled in or read by the shells.

use super::msg::{make_zxid, Msg};
use super::packet::{
    decode_int_data, encode_int_data, LearnerInfo, PacketType, QuorumPacket, PROTOCOL_VERSION,
};

/// The packet for a core message. NEWLEADER carries `config` (the leader's last-seen config
/// text); other bodies are empty.
pub fn to_packet(msg: &Msg, config: &str) -> QuorumPacket {
    use PacketType as T;
    let p = |t: PacketType, zxid: i64| QuorumPacket::new(t, zxid, None);
    match msg {
        Msg::LearnerInfo { sid, accepted_epoch, observer } => {
            let info = LearnerInfo {
                serverid: sid.0 as i64,
                protocol_version: PROTOCOL_VERSION,
                config_version: 0,
            };
            let t = if *observer { T::ObserverInfo } else { T::FollowerInfo };
            QuorumPacket::new(t, make_zxid(*accepted_epoch, 0), Some(info.encode()))
        }
        Msg::LeaderInfo { epoch } => QuorumPacket::new(
            T::LeaderInfo,
            make_zxid(*epoch, 0),
            Some(encode_int_data(PROTOCOL_VERSION)),
        ),
        Msg::AckEpoch { current_epoch, last_zxid } => {
            QuorumPacket::new(T::AckEpoch, *last_zxid, Some(encode_int_data(*current_epoch as i32)))
        }
        Msg::Diff { zxid } => p(T::Diff, *zxid),
        Msg::Trunc { zxid } => p(T::Trunc, *zxid),
        Msg::Snap { zxid } => p(T::Snap, *zxid),
        Msg::Proposal { zxid, payload } => {
            QuorumPacket::new(T::Proposal, *zxid, Some(payload.to_vec()))
        }
        Msg::Commit { zxid } => p(T::Commit, *zxid),
        Msg::Inform { zxid, payload } => {
            QuorumPacket::new(T::Inform, *zxid, Some(payload.to_vec()))
        }
        Msg::NewLeader { zxid } => {
            QuorumPacket::new(T::NewLeader, *zxid, Some(config.as_bytes().to_vec()))
        }
        Msg::UpToDate => p(T::UpToDate, -1),
        Msg::Ack { zxid } => p(T::Ack, *zxid),
        Msg::Ping { zxid } => p(T::Ping, *zxid),
        Msg::Sync => p(T::Sync, 0),
        Msg::Other => p(T::Ping, 0),
    }
}

/// The core message of a packet. REQUEST and REVALIDATE become [`Msg::Other`]; an unknown type
/// or a body that does not decode is an error (the connection is dropped).
pub fn from_packet(p: &QuorumPacket) -> Result<Msg, String> {
    use PacketType as T;
    let Some(t) = p.packet_type() else {
        return Err(format!("unknown packet type {}", p.typ));
    };
    let bad = |what: &str| format!("{t}: bad {what}");
    let payload = || -> std::sync::Arc<[u8]> { std::sync::Arc::from(p.data()) };
    Ok(match t {
        T::FollowerInfo | T::ObserverInfo => {
            let info = LearnerInfo::decode(p.data()).map_err(|_| bad("LearnerInfo"))?;
            if info.serverid <= 0 {
                return Err(bad("server id"));
            }
            Msg::LearnerInfo {
                sid: crate::proto::ServerId(info.serverid as u64),
                accepted_epoch: p.zxid >> 32,
                observer: t == T::ObserverInfo,
            }
        }
        T::LeaderInfo => Msg::LeaderInfo { epoch: p.zxid >> 32 },
        T::AckEpoch => {
            let epoch = decode_int_data(p.data()).map_err(|_| bad("epoch"))?;
            Msg::AckEpoch { current_epoch: i64::from(epoch), last_zxid: p.zxid }
        }
        T::Diff => Msg::Diff { zxid: p.zxid },
        T::Trunc => Msg::Trunc { zxid: p.zxid },
        T::Snap => Msg::Snap { zxid: p.zxid },
        T::Proposal => Msg::Proposal { zxid: p.zxid, payload: payload() },
        T::Commit => Msg::Commit { zxid: p.zxid },
        T::Inform => Msg::Inform { zxid: p.zxid, payload: payload() },
        T::NewLeader => Msg::NewLeader { zxid: p.zxid },
        T::UpToDate => Msg::UpToDate,
        T::Ack => Msg::Ack { zxid: p.zxid },
        T::Ping => Msg::Ping { zxid: p.zxid },
        T::Sync => Msg::Sync,
        T::Request | T::Revalidate => Msg::Other,
        T::CommitAndActivate | T::InformAndActivate => {
            return Err(format!("{t}: reconfiguration is not supported"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ServerId;

    #[test]
    fn every_core_message_survives_the_wire() {
        let payload: std::sync::Arc<[u8]> = std::sync::Arc::from(&b"txn"[..]);
        let msgs = [
            Msg::LearnerInfo { sid: ServerId(3), accepted_epoch: 7, observer: false },
            Msg::LearnerInfo { sid: ServerId(4), accepted_epoch: 0, observer: true },
            Msg::LeaderInfo { epoch: 8 },
            Msg::AckEpoch { current_epoch: -1, last_zxid: 0x7_0000_0003 },
            Msg::AckEpoch { current_epoch: 7, last_zxid: 0x7_0000_0003 },
            Msg::Diff { zxid: 5 },
            Msg::Trunc { zxid: 6 },
            Msg::Snap { zxid: 7 },
            Msg::Proposal { zxid: 8, payload: payload.clone() },
            Msg::Commit { zxid: 9 },
            Msg::Inform { zxid: 10, payload },
            Msg::NewLeader { zxid: 0x8_0000_0000 },
            Msg::UpToDate,
            Msg::Ack { zxid: 11 },
            Msg::Ping { zxid: 12 },
            Msg::Sync,
        ];
        for m in msgs {
            let p = to_packet(&m, "version=0");
            let mut bytes = Vec::new();
            super::super::packet::write_packet(&mut bytes, &p).expect("in memory");
            let back =
                super::super::packet::read_packet(&mut &bytes[..], 1 << 20).expect("decodes");
            assert_eq!(from_packet(&back).expect("known"), m);
        }
    }

    #[test]
    fn unknown_types_and_bad_bodies_are_errors() {
        let p = QuorumPacket { typ: 99, zxid: 0, data: None, authinfo: None };
        assert!(from_packet(&p).is_err());
        let p = QuorumPacket::new(PacketType::AckEpoch, 0, Some(vec![1]));
        assert!(from_packet(&p).is_err());
        let p = QuorumPacket::new(PacketType::FollowerInfo, 0, None);
        assert!(from_packet(&p).is_err());
    }
}
