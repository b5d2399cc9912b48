build-tsan/obj/src/hub/hub.o: src/hub/hub.c src/net/rate.h \
 src/net/server.h src/config.h src/util/buf.h src/util/list.h \
 src/presence/msg.h src/presence/presence.h src/store/store.h \
 src/util/log.h src/util/xalloc.h src/ws/frame.h
src/net/rate.h:
src/net/server.h:
src/config.h:
src/util/buf.h:
src/util/list.h:
src/presence/msg.h:
src/presence/presence.h:
src/store/store.h:
src/util/log.h:
src/util/xalloc.h:
src/ws/frame.h:
