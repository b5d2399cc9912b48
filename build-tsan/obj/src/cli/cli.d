build-tsan/obj/src/cli/cli.o: src/cli/cli.c src/cli/cli.h src/auth/auth.h \
 src/auth/jwt.h src/config.h src/net/server.h src/util/buf.h \
 src/util/list.h src/store/store.h src/util/log.h
src/cli/cli.h:
src/auth/auth.h:
src/auth/jwt.h:
src/config.h:
src/net/server.h:
src/util/buf.h:
src/util/list.h:
src/store/store.h:
src/util/log.h:
