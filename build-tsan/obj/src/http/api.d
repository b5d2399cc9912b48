build-tsan/obj/src/http/api.o: src/http/api.c src/auth/auth.h \
 src/auth/jwt.h src/http/assets.h src/net/rate.h src/net/server.h \
 src/config.h src/util/buf.h src/util/list.h src/presence/msg.h \
 src/presence/presence.h src/store/store.h src/util/log.h \
 src/util/xalloc.h
src/auth/auth.h:
src/auth/jwt.h:
src/http/assets.h:
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
