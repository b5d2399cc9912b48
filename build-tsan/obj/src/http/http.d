build-tsan/obj/src/http/http.o: src/http/http.c src/net/server.h \
 src/config.h src/util/buf.h src/util/list.h src/presence/msg.h \
 src/presence/presence.h src/util/log.h src/util/xalloc.h
src/net/server.h:
src/config.h:
src/util/buf.h:
src/util/list.h:
src/presence/msg.h:
src/presence/presence.h:
src/util/log.h:
src/util/xalloc.h:
