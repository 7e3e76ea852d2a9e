#!/bin/sh
# Ad-hoc ftpgate on 127.0.0.1:2121 with socat: one ftpgate process per
# connection, the client socket on its stdin/stdout (nofork).
exec socat TCP-LISTEN:2121,bind=127.0.0.1,reuseaddr,fork \
    EXEC:"/usr/sbin/ftpgate -i -f /etc/ftpgate/ftpgate.conf",nofork
