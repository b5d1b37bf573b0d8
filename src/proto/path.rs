//! Path syntax rules [PathUtils.validatePath] (wire-protocol.md §11.1), shared by the server's
//! prep stage and the client library.

/// Why a path is invalid.
pub fn validate(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("path length must be > 0");
    }
    if !path.starts_with('/') {
        return Err("path must start with / character");
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("path must not end with / character");
    }
    for component in path[1..].split('/') {
        match component {
            "" => return Err("empty node name specified"),
            "." | ".." => return Err("relative paths not allowed"),
            _ => {}
        }
    }
    if path.chars().any(invalid_char) {
        return Err("invalid character");
    }
    Ok(())
}

/// Whether a request body of `op` starts with a null path (`ustring` length -1). ZooKeeper's
/// request processors fail on it with MARSHALLINGERROR (a NullPointerException there), so rzk
/// answers the same instead of reading it as "".
pub fn null_path_body(op: super::OpCode, body: &[u8]) -> bool {
    use super::OpCode::*;
    let path_first = matches!(
        op,
        Create
            | Create2
            | CreateContainer
            | CreateTtl
            | Delete
            | Exists
            | GetData
            | SetData
            | GetAcl
            | SetAcl
            | GetChildren
            | GetChildren2
            | Sync
            | CheckWatches
            | RemoveWatches
            | AddWatch
            | GetAllChildrenNumber
    );
    path_first && body.len() >= 4 && body[..4] == [0xff; 4]
}

/// Characters ZooKeeper rejects in paths.
fn invalid_char(c: char) -> bool {
    let c = c as u32;
    c == 0
        || (0x01..=0x1f).contains(&c)
        || (0x7f..=0x9f).contains(&c)
        || (0xd800..=0xf8ff).contains(&c)
        || (0xfff0..=0xffff).contains(&c)
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn zookeeper_path_rules() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/a/..b", "/é"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in
            ["", "a", "/a/", "//", "/a//b", "/a/./b", "/..", "/a\u{0}", "/a\u{7f}", "/\u{e000}"]
        {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }
}
