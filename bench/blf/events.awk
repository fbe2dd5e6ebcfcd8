# A loopback capture of the BLF benchmark (bench/blf/run.sh), as
# `tcpdump -r FILE -tt -n -A` prints it, to one line per event; for mawk
# or gawk, with -v port=<the server's UDP port>:
#   <epoch seconds.micros> INVITE|RINGING|ANSWER|BYE <extension> <Call-ID>
#     a state change reaching the server: the caller's INVITE with
#     credentials and its BYE, the callee's 180 and 200 to the INVITE
#     (<extension>: the To user, the called extension);
#   <epoch seconds.micros> NOTIFY <extension> <Call-ID> <CSeq> <states>
#     a NOTIFY leaving the server, <states> what its body shows of the
#     watched extension's dialogs, comma-separated, each once: early
#     (also for trying and proceeding), confirmed, terminated
#     (<extension>: the From user).
# Times are the capture's (the kernel's, as the datagram passed through
# the loopback device). A datagram seen again (a retransmission) counts
# once, at its first time.

function user(value) {  # the user part of the URI in a From/To value
    sub(/^[^:]*: */, "", value)
    if (!match(value, /sips?:[^@;>]*@/)) return "-"
    value = substr(value, RSTART, RLENGTH - 1)
    sub(/^sips?:/, "", value)
    return value
}
function flush() {
    if (start != "") {
        kind = ""
        if (to_server && start ~ /^INVITE / && auth) kind = "INVITE"
        else if (to_server && start ~ /^BYE /) kind = "BYE"
        else if (to_server && start ~ /^SIP\/2\.0 180/ && method == "INVITE") kind = "RINGING"
        else if (to_server && start ~ /^SIP\/2\.0 200/ && method == "INVITE") kind = "ANSWER"
        else if (from_server && start ~ /^NOTIFY /) kind = "NOTIFY"
        if (kind != "") {
            key = kind " " callid " " cseq
            if (!(key in seen)) {
                seen[key] = 1
                if (kind == "NOTIFY") {
                    shown = ""
                    if (states ~ / (early|proceeding|trying)/) shown = shown ",early"
                    if (states ~ / confirmed/) shown = shown ",confirmed"
                    if (states ~ / terminated/ || states == "") shown = shown ",terminated"
                    printf "%s NOTIFY %s %s %s %s\n", t, from, callid, cseq, substr(shown, 2)
                } else {
                    printf "%s %s %s %s\n", t, kind, to, callid
                }
            }
        }
    }
    start = ""; inpkt = 0
}
# "1796622115.577172 IP 127.0.0.1.25083 > 127.0.0.1.25070: UDP, length 476"
/^[0-9]+\.[0-9]+ IP / && $4 == ">" {
    flush()
    t = $1
    src = $3; dst = $5; sub(/:$/, "", dst)
    sub(/.*\./, "", src); sub(/.*\./, "", dst)
    to_server = (dst == port && src != port)
    from_server = (src == port && dst != port)
    auth = 0; to = ""; from = ""; callid = ""; cseq = ""; method = ""; states = ""
    inpkt = 1
    next
}
!inpkt { next }
# The start line follows the IP and UDP headers, printed as characters.
start == "" {
    if (match($0, /(INVITE|ACK|BYE|CANCEL|NOTIFY|SUBSCRIBE|PUBLISH|REGISTER|OPTIONS) [a-z]+:|SIP\/2\.0 [0-9][0-9][0-9]/))
        start = substr($0, RSTART)
    next
}
{
    line = $0; sub(/[\r.]$/, "", line)
    lower = tolower(line)
    if (lower ~ /^to:/ || lower ~ /^t:/) to = user(line)
    else if (lower ~ /^from:/ || lower ~ /^f:/) from = user(line)
    else if (lower ~ /^call-id:/ || lower ~ /^i:/) { callid = line; sub(/^[^:]*: */, "", callid) }
    else if (lower ~ /^cseq:/) { cseq = $2; method = $3; sub(/[\r.]$/, "", method) }
    else if (lower ~ /^proxy-authorization:/) auth = 1
    while (match(line, /<state[^>]*>[a-z]+<\/state>/)) {
        s = substr(line, RSTART, RLENGTH)
        sub(/<\/state>.*/, "", s); sub(/.*>/, "", s)
        states = states " " s
        line = substr(line, RSTART + RLENGTH)
    }
}
END { flush() }
