//! Three election cores over real loopback TCP: the connection manager, the election thread
//! shell and the core together elect the peer with the best vote, and a peer restarted later
//! joins it.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use rzk::config::HostPort;
use rzk::proto::{ServerId, Zxid};
use rzk::quorum::cnxmanager::CnxManager;
use rzk::quorum::election::{Election, ElectionConfig, Outcome};
use rzk::quorum::election_thread::{self, Control};
use rzk::quorum::vote::{QuorumMaj, ServerState};

struct Node {
    cnx: CnxManager,
    control: Sender<Control>,
    outcomes: Receiver<Outcome>,
    thread: std::thread::JoinHandle<()>,
    listener: std::thread::JoinHandle<()>,
}

fn start(id: u64, listener: TcpListener, ports: &BTreeMap<u64, u16>, zxid: Zxid) -> Node {
    let address = |port: u16| HostPort { host: "127.0.0.1".into(), port };
    let peers = ports.iter().map(|(&sid, &port)| (ServerId(sid), address(port))).collect();
    let (cnx, received) = CnxManager::new(
        ServerId(id),
        vec![address(ports[&id])],
        peers,
        Duration::from_secs(5),
        Default::default(),
    );
    let listener = cnx.listen(listener).expect("listener thread");
    let qv = QuorumMaj::new(ports.keys().map(|&s| ServerId(s)), [], 0, "version=0".into());
    let core = Election::new(ServerId(id), qv, zxid, 1, ElectionConfig::default());
    let (control, control_rx) = unbounded();
    let (outcomes_tx, outcomes) = unbounded();
    let thread = election_thread::spawn(core, cnx.clone(), received, control_rx, outcomes_tx)
        .expect("election thread");
    let start = Control::Start { last_logged_zxid: zxid, current_epoch: 1 };
    control.send(start).expect("thread is running");
    Node { cnx, control, outcomes, thread, listener }
}

fn stop(node: Node) {
    node.control.send(Control::Stop).expect("thread is running");
    node.thread.join().expect("election thread does not panic");
    node.cnx.halt();
    node.listener.join().expect("listener does not panic");
}

#[test]
fn three_peers_over_tcp_elect_the_highest_zxid_and_a_restarted_peer_joins() {
    let listeners: Vec<TcpListener> =
        (0..3).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    let ports: BTreeMap<u64, u16> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.local_addr().expect("bound").port()))
        .collect();
    // Peer 2 has the most recent zxid, so it must lead although 3 has the larger sid.
    let zxids = [Zxid::new(1, 4), Zxid::new(1, 7), Zxid::new(1, 5)];
    let mut nodes: Vec<Option<Node>> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| Some(start(i as u64 + 1, l, &ports, zxids[i])))
        .collect();
    let wait = Duration::from_secs(20);
    let decided: Vec<Outcome> = nodes
        .iter()
        .map(|n| n.as_ref().unwrap().outcomes.recv_timeout(wait).expect("decided in time"))
        .collect();
    for (i, outcome) in decided.iter().enumerate() {
        assert_eq!(outcome.vote.leader, ServerId(2), "peer {}", i + 1);
        assert_eq!(outcome.vote.zxid, Zxid::new(1, 7));
        let expected = if i == 1 { ServerState::Leading } else { ServerState::Following };
        assert_eq!(outcome.vote.state, expected);
    }

    // Peer 3 restarts (new listener on the same port, fresh core) and joins leader 2.
    stop(nodes[2].take().unwrap());
    let listener = TcpListener::bind(("127.0.0.1", ports[&3])).expect("rebind the same port");
    nodes[2] = Some(start(3, listener, &ports, zxids[2]));
    let joined = nodes[2].as_ref().unwrap().outcomes.recv_timeout(wait).expect("joined");
    assert_eq!((joined.vote.leader, joined.vote.state), (ServerId(2), ServerState::Following));
    for node in nodes.into_iter().flatten() {
        stop(node);
    }
}
