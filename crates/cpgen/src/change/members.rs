//! The order in which etcd's membership moves from what runs now to what the config states:
//! one member at a time, never through a state etcd calls unsafe. Pure: members in, moves out.

use std::collections::BTreeMap;

use super::runbook::At;

/// An etcd member as its peers know it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Member {
    /// `--name`.
    pub(crate) name: String,
    /// Its peer URL, `https://address:port`.
    pub(crate) peer_url: String,
    /// Its client URL, `https://address:port`.
    pub(crate) client_url: String,
    /// The machine's address as a URL's host (IPv6 in brackets).
    pub(crate) url_host: String,
}

impl Member {
    /// Where the steps about this member run.
    pub(crate) fn at(&self) -> At<'_> {
        At {
            host: &self.name,
            url_host: &self.url_host,
        }
    }

    /// The same member of etcd: the same name at the same peer URL. A client URL that
    /// changes is a restart, not a new member.
    fn same_as(&self, other: &Member) -> bool {
        self.name == other.name && self.peer_url == other.peer_url
    }
}

/// One change of membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Move {
    /// `member` joins; `voters` are the members that vote when it is added, and with it
    /// they are its `--initial-cluster`.
    Join { member: Member, voters: Vec<Member> },
    /// `member` leaves; `voters` are the members that vote once it is gone.
    Leave { member: Member, voters: Vec<Member> },
}

/// Why no order keeps the cluster safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unsafe {
    /// Removing the last voter ends the cluster.
    LastMember { member: String },
    /// Removing a member of a two-member cluster needs both to agree, and etcd documents it
    /// as unsafe: a failure during the removal leaves a cluster that cannot make progress.
    TwoMembers { member: String },
    /// A joining member would take the address of another member that still runs there.
    AddressInUse {
        member: String,
        address: String,
        holder: String,
    },
}

/// The moves from `current` to `target`, in order: new names join first (as learners, so
/// the quorum does not grow until a learner is in sync), then a member whose name stays but
/// whose address changes leaves and joins again (its old entry must be gone before one of
/// the same name can join), then members that go leave. Every leave keeps at least two
/// voters; otherwise the change is refused.
pub(crate) fn moves(current: &[Member], target: &[Member]) -> Result<Vec<Move>, Unsafe> {
    let now: BTreeMap<&str, &Member> = current.iter().map(|m| (m.name.as_str(), m)).collect();
    let joining = target
        .iter()
        .filter(|m| !now.get(m.name.as_str()).is_some_and(|old| old.same_as(m)));
    for member in joining {
        let holder = current
            .iter()
            .find(|c| c.name != member.name && c.url_host == member.url_host);
        if let Some(holder) = holder {
            return Err(Unsafe::AddressInUse {
                member: member.name.clone(),
                address: member.url_host.clone(),
                holder: holder.name.clone(),
            });
        }
    }
    let then: BTreeMap<&str, &Member> = target.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut voters: Vec<Member> = current.to_vec();
    let mut moves = Vec::new();
    let joins = target.iter().filter(|m| !now.contains_key(m.name.as_str()));
    for member in joins {
        moves.push(join(&mut voters, member));
    }
    let moved = target
        .iter()
        .filter(|m| now.get(m.name.as_str()).is_some_and(|old| !old.same_as(m)));
    for member in moved {
        if let Some(old) = now.get(member.name.as_str()) {
            moves.push(leave(&mut voters, old)?);
        }
        moves.push(join(&mut voters, member));
    }
    let leaves = current
        .iter()
        .filter(|m| !then.contains_key(m.name.as_str()));
    for member in leaves {
        moves.push(leave(&mut voters, member)?);
    }
    Ok(moves)
}

fn join(voters: &mut Vec<Member>, member: &Member) -> Move {
    voters.push(member.clone());
    Move::Join {
        member: member.clone(),
        voters: voters.clone(),
    }
}

fn leave(voters: &mut Vec<Member>, member: &Member) -> Result<Move, Unsafe> {
    let name = member.name.clone();
    match voters.len() {
        0 | 1 => return Err(Unsafe::LastMember { member: name }),
        2 => return Err(Unsafe::TwoMembers { member: name }),
        _ => {}
    }
    voters.retain(|v| v.name != member.name);
    Ok(Move::Leave {
        member: member.clone(),
        voters: voters.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, last: u8) -> Member {
        Member {
            name: name.to_owned(),
            peer_url: format!("https://127.0.1.{last}:2380"),
            client_url: format!("https://127.0.1.{last}:2379"),
            url_host: format!("127.0.1.{last}"),
        }
    }

    fn names(moves: &[Move]) -> Vec<String> {
        moves
            .iter()
            .map(|m| match m {
                Move::Join { member, voters } => format!("+{} ({})", member.name, voters.len()),
                Move::Leave { member, voters } => format!("-{} ({})", member.name, voters.len()),
            })
            .collect()
    }

    #[test]
    fn growing_adds_one_member_at_a_time_each_with_the_membership_at_its_join() {
        let three = [member("a", 1), member("b", 2), member("c", 3)];
        let five = [three.to_vec(), vec![member("d", 4), member("e", 5)]].concat();
        let moves = moves(&three, &five).unwrap();
        assert_eq!(names(&moves), ["+d (4)", "+e (5)"]);
        let Move::Join { voters, .. } = &moves[0] else {
            panic!("{moves:?}")
        };
        assert_eq!(voters.last(), Some(&member("d", 4)));
    }

    #[test]
    fn shrinking_removes_one_at_a_time_and_never_from_two_members() {
        let five: Vec<_> = (1..=5).map(|i| member(&format!("m{i}"), i)).collect();
        assert_eq!(
            names(&moves(&five, &five[..3]).unwrap()),
            ["-m4 (4)", "-m5 (3)"]
        );
        assert_eq!(
            moves(&five[..3], &five[..1]),
            Err(Unsafe::TwoMembers {
                member: "m3".to_owned()
            })
        );
    }

    #[test]
    fn a_moved_member_leaves_before_it_joins_again_and_new_names_join_first() {
        let three = [member("a", 1), member("b", 2), member("c", 3)];
        let moved = [member("a", 1), member("b", 2), member("c", 9)];
        assert_eq!(names(&moves(&three, &moved).unwrap()), ["-c (2)", "+c (3)"]);
        let renamed = [member("a", 1), member("b", 2), member("x", 9)];
        assert_eq!(
            names(&moves(&three, &renamed).unwrap()),
            ["+x (4)", "-c (3)"]
        );
        let single = [member("a", 1)];
        assert_eq!(
            moves(&single, &[member("a", 2)]),
            Err(Unsafe::LastMember {
                member: "a".to_owned()
            })
        );
        assert_eq!(moves(&three, &three).unwrap(), []);
        let swapped = [member("a", 1), member("b", 3), member("c", 2)];
        assert!(matches!(
            moves(&three, &swapped),
            Err(Unsafe::AddressInUse { .. })
        ));
        let mut new_client_port = three.clone();
        new_client_port[0].client_url = "https://127.0.1.1:2479".to_owned();
        assert_eq!(moves(&three, &new_client_port).unwrap(), []);
    }
}
